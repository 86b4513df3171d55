"""Structure learning from discrete observational data: returns the CPDAG of a Bayesian network.

The harness calls learn_cpdag(data, cards) in a fresh process with one data set and
nothing else. Lines above the editable region are a fixed toolbox (counting, a G-test,
cached BDeu/BIC local scores, and the graph utilities of graphs.py imported below) that
the method may use or ignore.
"""

import itertools
import math

import numpy as np
from scipy.special import chdtrc, gammaln

from graphs import dag_to_cpdag, is_dag, meek, pdag_to_dag  # noqa: F401 (for the method)


def config_index(data, cols, cards):
    """Joint state of columns `cols` in each row, as an index 0..k-1, and k.

    k counts the observed joint states only when the full product of cardinalities exceeds
    the number of rows (then the indices are renumbered in sorted order)."""
    n = data.shape[0]
    if len(cols) == 0:
        return np.zeros(n, dtype=np.int64), 1
    idx = data[:, cols[0]].astype(np.int64)
    size = int(cards[cols[0]])
    for c in cols[1:]:
        idx *= int(cards[c])
        idx += data[:, c]
        size *= int(cards[c])
        if size > n:
            uniq, idx = np.unique(idx, return_inverse=True)
            size = len(uniq)
    return idx, size


def contingency(data, cards, x, y, S=()):
    """Counts N[z, a, b] of (S = z, x = a, y = b); z runs over config_index(data, S, cards)."""
    z, nz = config_index(data, S, cards)
    rx, ry = int(cards[x]), int(cards[y])
    flat = (z * rx + data[:, x]) * ry + data[:, y]
    return np.bincount(flat, minlength=nz * rx * ry).reshape(nz, rx, ry)


def g_test(data, cards, x, y, S=()):
    """G^2 likelihood-ratio test of x _||_ y | S (Spirtes et al. 2000, sec. 5.4.2).

    Returns (p_value, statistic, dof) with the classical degrees of freedom
    (r_x - 1)(r_y - 1) * prod_{s in S} r_s."""
    N = contingency(data, cards, x, y, S).astype(np.float64)
    Nxz = N.sum(axis=2, keepdims=True)
    Nyz = N.sum(axis=1, keepdims=True)
    Nz = N.sum(axis=(1, 2), keepdims=True)
    mask = N > 0
    expected = (Nxz * Nyz / np.maximum(Nz, 1.0))[mask]
    stat = 2.0 * float(np.sum(N[mask] * np.log(N[mask] / expected)))
    dof = (int(cards[x]) - 1) * (int(cards[y]) - 1) * int(np.prod([int(cards[s]) for s in S]))
    return float(chdtrc(dof, stat)), stat, dof


class LocalScore:
    """Cached decomposable score of a discrete DAG (higher is better).

    kind="bdeu": log BDeu marginal likelihood with equivalent sample size `ess`
                 (Heckerman, Geiger & Chickering 1995);
    kind="bic":  log-likelihood - 0.5 * log(n) * (r - 1) * q (Schwarz 1978).
    score(v, parents) is the local score of v given the parent set; calls are memoized."""

    def __init__(self, data, cards, kind="bdeu", ess=1.0):
        if kind not in ("bdeu", "bic"):
            raise ValueError(f"kind must be 'bdeu' or 'bic', got {kind!r}")
        self.data = np.asfortranarray(data, dtype=np.int64)  # contiguous columns
        self.cards = np.asarray(cards, dtype=np.int64)
        self.kind = kind
        self.ess = float(ess)
        self.log_n = math.log(self.data.shape[0])
        self.cache = {}

    def score(self, v, parents):
        key = (int(v), tuple(sorted(int(p) for p in parents)))
        s = self.cache.get(key)
        if s is None:
            s = self._compute(key[0], key[1])
            self.cache[key] = s
        return s

    def dag_score(self, A):
        A = np.asarray(A)
        return sum(self.score(v, np.flatnonzero(A[:, v])) for v in range(A.shape[0]))

    def _compute(self, v, parents):
        r = int(self.cards[v])
        j, nj = config_index(self.data, parents, self.cards)
        j *= r
        j += self.data[:, v]
        N = np.bincount(j, minlength=nj * r)
        Nj = N.reshape(nj, r).sum(axis=1)
        N = N[N > 0].astype(np.float64)
        Nj = Nj[Nj > 0].astype(np.float64)
        q = 1.0
        for p in parents:
            q *= float(self.cards[p])
        if self.kind == "bic":
            loglik = float(np.dot(N, np.log(N)) - np.dot(Nj, np.log(Nj)))
            return loglik - 0.5 * self.log_n * (r - 1) * q
        a_j = self.ess / q
        a_jk = a_j / r
        return float(len(Nj) * gammaln(a_j) - np.sum(gammaln(a_j + Nj))
                     + np.sum(gammaln(a_jk + N)) - len(N) * gammaln(a_jk))


# ----------------------------------------------------------------------------------------
# EDITABLE REGION: the structure learning method. Keep the signature of learn_cpdag.
# ----------------------------------------------------------------------------------------
ALPHA = 0.05  # significance level of the conditional independence tests


def learn_cpdag(data, cards):
    """PC-stable (Spirtes et al. 2000; Colombo & Maathuis 2014) with the G^2 test.

    data:  (n, d) int64 array, data[:, i] in 0..cards[i]-1
    cards: (d,) int64 array of the number of states of each variable
    returns a (d, d) 0/1 matrix in the encoding of graphs.py (i -> j: G[i,j]=1, G[j,i]=0;
    i -- j: G[i,j]=G[j,i]=1)."""
    n, d = data.shape
    adj = ~np.eye(d, dtype=bool)
    sepset = {}

    # 1. Skeleton: remove x - y once some S in adj(x) \ {y} with |S| = level separates them.
    level = 0
    while True:
        nbrs = [np.flatnonzero(adj[x]) for x in range(d)]  # frozen for the level (PC-stable)
        if all(len(nb) - 1 < level for nb in nbrs):
            break
        for x in range(d):
            for y in nbrs[x]:
                if not adj[x, y]:
                    continue
                candidates = [k for k in nbrs[x] if k != y]
                if len(candidates) < level:
                    continue
                for S in itertools.combinations(candidates, level):
                    p_value = g_test(data, cards, x, y, S)[0]
                    if p_value > ALPHA:
                        adj[x, y] = adj[y, x] = False
                        sepset[(x, y)] = sepset[(y, x)] = set(S)
                        break
        level += 1

    # 2. Colliders: x -> k <- y for non-adjacent x, y with common neighbour k not in sepset.
    G = adj.astype(np.int8)
    for k in range(d):
        nb = np.flatnonzero(adj[k])
        for x, y in itertools.combinations(nb, 2):
            if adj[x, y] or k in sepset.get((x, y), ()):
                continue
            # keep orientations made earlier (first collider wins on conflicts)
            if G[x, k]:
                G[k, x] = 0
            if G[y, k]:
                G[k, y] = 0

    # 3. Propagate with Meek's rules.
    return meek(G)
# ----------------------------------------------------------------------------------------
# END OF EDITABLE REGION
# ----------------------------------------------------------------------------------------
