MAX_ITER = 100000  # safety cap on the number of moves


def _reach(A):
    """R[i, j] = True iff there is a directed path of length >= 1 from i to j in A."""
    R = A.copy()
    for k in range(A.shape[0]):
        R |= R[:, k:k + 1] & R[k:k + 1, :]
    return R


def _path_avoiding_edge(A, i, j):
    """True iff j is reachable from i in A without using the edge i -> j."""
    stack = [w for w in np.flatnonzero(A[i]) if w != j]
    seen = set(stack)
    while stack:
        u = stack.pop()
        if u == j:
            return True
        for w in np.flatnonzero(A[u]):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return False


def learn_cpdag(data, cards):
    """Greedy hill climbing over DAGs with the BIC score (add / delete / reverse an arc,
    best improving move first, from the empty graph; as bnlearn's hc), then the CPDAG of
    the DAG found (Heckerman, Geiger & Chickering 1995; Scutari, Graafland & Gutierrez 2019).

    data:  (n, d) int64 array, data[:, i] in 0..cards[i]-1
    cards: (d,) int64 array of the number of states of each variable
    returns a (d, d) 0/1 CPDAG matrix in the encoding of graphs.py."""
    n, d = data.shape
    sc = LocalScore(data, cards, kind="bic")
    A = np.zeros((d, d), dtype=bool)
    parents = [set() for _ in range(d)]
    local = [sc.score(v, ()) for v in range(d)]

    for _ in range(MAX_ITER):
        R = _reach(A)
        moves = []  # (delta, kind, i, j); kind 0 add i->j, 1 delete i->j, 2 reverse i->j
        for j in range(d):
            for i in range(d):
                if i == j:
                    continue
                if A[i, j]:
                    without = sc.score(j, parents[j] - {i}) - local[j]
                    moves.append((without, 1, i, j))
                    moves.append((without + sc.score(i, parents[i] | {j}) - local[i], 2, i, j))
                elif not A[j, i] and not R[j, i]:
                    moves.append((sc.score(j, parents[j] | {i}) - local[j], 0, i, j))
        # ties (e.g. the two directions of an arc, equal under BIC) go to the first move in
        # (kind, i, j) order rather than to floating-point noise
        moves.sort(key=lambda m: (-round(m[0], 6), m[1], m[2], m[3]))
        applied = False
        for delta, kind, i, j in moves:
            if delta <= 1e-9:
                break
            if kind == 2 and _path_avoiding_edge(A, i, j):
                continue  # reversing would close a cycle
            if kind == 0:
                A[i, j] = True
                parents[j].add(i)
            elif kind == 1:
                A[i, j] = False
                parents[j].discard(i)
            else:
                A[i, j] = False
                parents[j].discard(i)
                A[j, i] = True
                parents[i].add(j)
                local[i] = sc.score(i, parents[i])
            local[j] = sc.score(j, parents[j])
            applied = True
            break
        if not applied:
            break
    return dag_to_cpdag(A.astype(np.int8))
