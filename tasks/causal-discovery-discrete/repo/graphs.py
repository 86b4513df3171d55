"""Graph utilities shared by the harness, the grader and the method (fixed, no I/O).

Encoding of a PDAG / CPDAG over d nodes as a d x d 0/1 integer matrix G:
    G[i, j] == 1 and G[j, i] == 0   ->  directed edge i -> j
    G[i, j] == 1 and G[j, i] == 1   ->  undirected edge i -- j
    G[i, j] == 0 and G[j, i] == 0   ->  no edge
A DAG uses directed edges only.
"""

import numpy as np


def meek(G):
    """Close a PDAG under Meek's orientation rules R1-R3 (Meek 1995); returns a new matrix.

    R1: a -> b -- c, a, c non-adjacent            =>  b -> c
    R2: a -> b -> c, a -- c                       =>  a -> c
    R3: a -- c -> b, a -- d -> b, a -- b, c, d non-adjacent  =>  a -> b
    R1-R3 are complete for turning a DAG's pattern (skeleton + v-structures) into its CPDAG.
    """
    G = np.array(G, dtype=np.int8)
    d = G.shape[0]
    changed = True
    while changed:
        changed = False
        und = (G == 1) & (G.T == 1)
        dirc = (G == 1) & (G.T == 0)
        adj = (G == 1) | (G.T == 1)
        for b in range(d):
            for c in np.flatnonzero(und[b]):
                if not (G[b, c] and G[c, b]):
                    continue  # oriented earlier in this sweep
                parents_b = np.flatnonzero(dirc[:, b])
                # R1
                if np.any(~adj[parents_b, c] & (parents_b != c)):
                    G[c, b] = 0
                    changed = True
                    continue
                # R2: b -> x -> c
                if np.any(dirc[b] & dirc[:, c]):
                    G[c, b] = 0
                    changed = True
                    continue
                # R3: b -- x -> c and b -- y -> c with x, y non-adjacent
                xs = np.flatnonzero(und[b] & dirc[:, c])
                if len(xs) >= 2:
                    sub = adj[np.ix_(xs, xs)]
                    if np.any(~sub[np.triu_indices(len(xs), 1)]):
                        G[c, b] = 0
                        changed = True
    return G


def dag_to_cpdag(A):
    """CPDAG (essential graph) of the DAG with adjacency A (A[i, j] = 1 iff i -> j)."""
    A = np.array(A, dtype=np.int8)
    d = A.shape[0]
    G = ((A + A.T) > 0).astype(np.int8)  # skeleton, all undirected
    for k in range(d):
        pa = np.flatnonzero(A[:, k])
        for ii in range(len(pa)):
            for jj in range(ii + 1, len(pa)):
                i, j = pa[ii], pa[jj]
                if not A[i, j] and not A[j, i]:  # v-structure i -> k <- j
                    G[k, i] = 0
                    G[k, j] = 0
    return meek(G)


def pdag_to_dag(G):
    """A consistent DAG extension of a PDAG (Dor & Tarsi 1992), or None if it has none."""
    G = np.array(G, dtype=np.int8)
    d = G.shape[0]
    A = ((G == 1) & (G.T == 0)).astype(np.int8)  # directed part
    active = np.ones(d, dtype=bool)
    H = G.copy()
    while active.any():
        found = False
        for x in np.flatnonzero(active):
            out_dir = (H[x] == 1) & (H[:, x] == 0) & active
            if out_dir.any():
                continue  # x must be a sink among the remaining nodes
            und = np.flatnonzero((H[x] == 1) & (H[:, x] == 1) & active)
            adj = np.flatnonzero(((H[x] == 1) | (H[:, x] == 1)) & active)
            ok = True
            for y in und:  # every undirected neighbour is adjacent to all of x's neighbours
                others = adj[adj != y]
                if not np.all((H[y, others] == 1) | (H[others, y] == 1)):
                    ok = False
                    break
            if not ok:
                continue
            for y in und:
                A[y, x] = 1
            active[x] = False
            found = True
            break
        if not found:
            return None
    return A


def is_dag(A):
    """True iff the directed graph A has no directed cycle."""
    A = np.asarray(A) != 0
    indeg = A.sum(axis=0)
    stack = list(np.flatnonzero(indeg == 0))
    seen = 0
    indeg = indeg.copy()
    while stack:
        v = stack.pop()
        seen += 1
        for w in np.flatnonzero(A[v]):
            indeg[w] -= 1
            if indeg[w] == 0:
                stack.append(w)
    return seen == A.shape[0]


def shd(G_true, G_est):
    """Structural Hamming distance between two PDAGs (Tsamardinos et al. 2006):
    the number of node pairs whose edge (absent, i -> j, j -> i, i -- j) differs."""
    T = np.asarray(G_true) != 0
    E = np.asarray(G_est) != 0
    iu = np.triu_indices(T.shape[0], 1)
    code_t = T[iu] * 1 + T.T[iu] * 2
    code_e = E[iu] * 1 + E.T[iu] * 2
    return int(np.sum(code_t != code_e))


def skeleton_f1(G_true, G_est):
    """F1 of the estimated adjacencies against the true ones (1.0 when both are empty)."""
    T = np.asarray(G_true) != 0
    E = np.asarray(G_est) != 0
    iu = np.triu_indices(T.shape[0], 1)
    t = (T | T.T)[iu]
    e = (E | E.T)[iu]
    tp = int(np.sum(t & e))
    denom = int(t.sum() + e.sum())
    return 1.0 if denom == 0 else 2.0 * tp / denom
