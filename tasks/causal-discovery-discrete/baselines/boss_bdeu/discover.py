BDEU_ESS = 1.0     # equivalent sample size of the BDeu score
TIE_TOL = 1e-7     # a later candidate must beat the best so far by this much (ties: first wins)
MAX_SUBSET = 12    # largest neighbour set whose subsets H are enumerated in BES
SHUFFLE_SEED = 0   # seeds the random initial orders and the visiting order of the variables
NUM_STARTS = 3     # independent runs from random initial orders; the best-scoring CPDAG wins


class _GSTNode:
    """Node of a grow-shrink tree (Andrews et al. 2023): caches the greedy parent choices
    of one variable, branching on which candidate parents precede it in the order."""

    def __init__(self, add, score):
        self.add = add
        self.grow_score = score
        self.shrink_score = score
        self.branches = None  # [(score, parent, node)], best first, improving only
        self.remove = None    # parents dropped by the shrink step at this leaf


class _GST:
    def __init__(self, v, d, sc):
        self.v = v
        self.d = d
        self.sc = sc
        self.root = _GSTNode(None, sc.score(v, ()))

    def trace(self, prefix):
        """Best-found local score of v when its parents must come from `prefix`
        (grow greedily, then shrink), and the parent list."""
        node = self.root
        available = [w for w in range(self.d) if w != self.v]
        parents = []
        while True:
            if node.branches is None:
                node.branches = []
                for w in available:
                    s = self.sc.score(self.v, parents + [w])
                    if s > node.grow_score:
                        node.branches.append((s, w, _GSTNode(w, s)))
                node.branches.sort(key=lambda b: (-b[0], b[1]))
            nxt = None
            for s, w, child in node.branches:
                available.remove(w)
                if w in prefix:
                    parents.append(w)
                    nxt = child
                    break
            if nxt is None:
                break
            node = nxt
        if node.remove is None:
            node.remove = []
            while True:
                best = None
                for w in list(parents):
                    s = self.sc.score(self.v, [u for u in parents if u != w])
                    if s > node.shrink_score:
                        node.shrink_score, best = s, w
                if best is None:
                    break
                node.remove.append(best)
                parents.remove(best)
        else:
            for w in node.remove:
                parents.remove(w)
        return node.shrink_score, parents


def _better_mutation(v, order, gsts):
    """Move v to the position of the order with the best total score (if it improves)."""
    i = order.index(v)
    p = len(order)
    scores = np.zeros(p + 1)
    prefix, total = set(), 0.0
    for j, w in enumerate(order):
        scores[j] = gsts[v].trace(prefix)[0] + total
        if w != v:
            total += gsts[w].trace(prefix)[0]
            prefix.add(w)
    scores[p] = gsts[v].trace(prefix)[0] + total
    best = p
    prefix.add(v)
    total = 0.0
    for j in range(p - 1, -1, -1):
        w = order[j]
        if w != v:
            prefix.remove(w)
            total += gsts[w].trace(prefix)[0]
        scores[j] += total
        if scores[j] > scores[best] + TIE_TOL:
            best = j
    if scores[i] + 1e-6 > scores[best]:
        return False
    order.remove(v)
    order.insert(best - int(best > i), v)
    return True


def _dag_of_order(order, gsts):
    d = len(order)
    A = np.zeros((d, d), dtype=np.int8)
    for k, v in enumerate(order):
        for p in gsts[v].trace(set(order[:k]))[1]:
            A[p, v] = 1
    return A


def _subsets(items):
    items = list(items)[:MAX_SUBSET]
    for k in range(len(items) + 1):
        yield from itertools.combinations(items, k)


def _bes(G, sc):
    """Backward equivalence search (Chickering 2002) from the CPDAG G."""
    d = G.shape[0]
    while True:
        adj = (G == 1) | (G.T == 1)
        und = (G == 1) & (G.T == 1)
        dirc = (G == 1) & (G.T == 0)
        best = (1e-9, None)
        for y in range(d):
            pa_y = set(np.flatnonzero(dirc[:, y]))
            nb_y = np.flatnonzero(und[y])
            for x in np.flatnonzero(adj[:, y]):
                if dirc[y, x]:
                    continue
                na = [z for z in nb_y if adj[x, z] and z != x]
                for H in _subsets(na):
                    rest = set(na) - set(H)
                    if not all(adj[a, b] for a, b in itertools.combinations(rest, 2)):
                        continue
                    base = rest | (pa_y - {x})
                    delta = sc.score(y, base) - sc.score(y, base | {x})
                    if delta > best[0] + TIE_TOL:
                        best = (delta, (x, y, H))
        if best[1] is None:
            return G
        x, y, H = best[1]
        G[x, y] = G[y, x] = 0
        for h in H:
            G[y, h], G[h, y] = 1, 0
            if G[x, h] and G[h, x]:
                G[h, x] = 0
        G = dag_to_cpdag(pdag_to_dag(G))


def _topological_order(A):
    order, indeg = [], A.sum(axis=0).astype(int)
    ready = sorted(np.flatnonzero(indeg == 0).tolist())
    while ready:
        v = ready.pop(0)
        order.append(v)
        for w in np.flatnonzero(A[v]):
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(int(w))
    return order


def learn_cpdag(data, cards):
    """BOSS, best order score search (Andrews, Ramsey, Sanchez-Romero, Camchong &
    Kummerfeld 2023) with the BDeu score: moves each variable to its best position in a
    causal order (local scores from grow-shrink trees) until no move improves, then runs
    BES on the DAG of the order; repeats from the order of the BES result while the score
    improves. NUM_STARTS runs from random initial orders; the best-scoring CPDAG is returned.

    data:  (n, d) int64 array, data[:, i] in 0..cards[i]-1
    cards: (d,) int64 array of the number of states of each variable
    returns a (d, d) 0/1 CPDAG matrix in the encoding of graphs.py."""
    n, d = data.shape
    sc = LocalScore(data, cards, kind="bdeu", ess=BDEU_ESS)
    gsts = [_GST(v, d, sc) for v in range(d)]  # shared by all starts: they only cache scores
    rng = np.random.default_rng(SHUFFLE_SEED)
    best_score, best_G = -np.inf, None
    for start in range(NUM_STARTS):
        order = [int(v) for v in rng.permutation(d)]
        run_score = -np.inf
        while True:
            improved = True
            while improved:
                improved = False
                for v in rng.permutation(d):
                    improved |= _better_mutation(int(v), order, gsts)
            G = _bes(dag_to_cpdag(_dag_of_order(order, gsts)), sc)
            A = pdag_to_dag(G)
            score = sc.dag_score(A)
            if score <= run_score + 1e-6:
                break
            run_score = score
            if score > best_score + 1e-6:
                best_score, best_G = score, G
            order = _topological_order(A)
    return best_G
