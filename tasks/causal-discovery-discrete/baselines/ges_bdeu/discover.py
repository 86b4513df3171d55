BDEU_ESS = 1.0     # equivalent sample size of the BDeu score
TIE_TOL = 1e-7     # a later candidate must beat the best so far by this much (ties: first wins)
MAX_SUBSET = 12    # largest neighbour set whose subsets T / H are enumerated


def _subsets(items):
    items = list(items)
    if len(items) > MAX_SUBSET:
        items = items[:MAX_SUBSET]
    for k in range(len(items) + 1):
        yield from itertools.combinations(items, k)


def _is_clique(adj, nodes):
    nodes = list(nodes)
    return all(adj[a, b] for a, b in itertools.combinations(nodes, 2))


def _semi_directed_path_blocked(G, src, dst, blocked):
    """True iff every semi-directed path src ~> dst (edges -> or --) meets `blocked`."""
    stack, seen = [src], {src}
    while stack:
        u = stack.pop()
        for w in np.flatnonzero(G[u]):  # u -> w or u -- w
            if w == dst:
                return False
            if w not in seen and w not in blocked:
                seen.add(w)
                stack.append(w)
    return True


def _to_cpdag(G):
    A = pdag_to_dag(G)
    if A is None:
        raise RuntimeError("GES produced a PDAG without a consistent extension")
    return dag_to_cpdag(A)


def _best_insert(G, sc):
    d = G.shape[0]
    adj = (G == 1) | (G.T == 1)
    und = (G == 1) & (G.T == 1)
    dirc = (G == 1) & (G.T == 0)
    best = (1e-9, None)
    for y in range(d):
        pa_y = set(np.flatnonzero(dirc[:, y]))
        nb_y = np.flatnonzero(und[y])
        for x in range(d):
            if x == y or adj[x, y]:
                continue
            na = {z for z in nb_y if adj[x, z]}
            t0 = [z for z in nb_y if not adj[x, z]]
            for T in _subsets(t0):
                S = na | set(T)
                if not _is_clique(adj, S):
                    continue
                delta = sc.score(y, S | pa_y | {x}) - sc.score(y, S | pa_y)
                if delta > best[0] + TIE_TOL and _semi_directed_path_blocked(G, y, x, S):
                    best = (delta, (x, y, T))
    return best


def _best_delete(G, sc):
    d = G.shape[0]
    adj = (G == 1) | (G.T == 1)
    und = (G == 1) & (G.T == 1)
    dirc = (G == 1) & (G.T == 0)
    best = (1e-9, None)
    for y in range(d):
        pa_y = set(np.flatnonzero(dirc[:, y]))
        nb_y = np.flatnonzero(und[y])
        for x in np.flatnonzero(adj[:, y]):
            if dirc[y, x]:
                continue  # y -> x: handled as the pair (y, x)
            na = [z for z in nb_y if adj[x, z] and z != x]
            for H in _subsets(na):
                rest = set(na) - set(H)
                if not _is_clique(adj, rest):
                    continue
                base = rest | (pa_y - {x})
                delta = sc.score(y, base) - sc.score(y, base | {x})
                if delta > best[0] + TIE_TOL:
                    best = (delta, (x, y, H))
    return best


def learn_cpdag(data, cards):
    """Greedy Equivalence Search (Chickering 2002) with the BDeu score: a forward phase
    of Insert(X, Y, T) operators, then a backward phase of Delete(X, Y, H) operators, each
    step taking the best valid operator over the current CPDAG.

    data:  (n, d) int64 array, data[:, i] in 0..cards[i]-1
    cards: (d,) int64 array of the number of states of each variable
    returns a (d, d) 0/1 CPDAG matrix in the encoding of graphs.py."""
    n, d = data.shape
    sc = LocalScore(data, cards, kind="bdeu", ess=BDEU_ESS)
    G = np.zeros((d, d), dtype=np.int8)
    while True:  # forward equivalence search
        delta, op = _best_insert(G, sc)
        if op is None:
            break
        x, y, T = op
        G[x, y], G[y, x] = 1, 0
        for t in T:
            G[t, y], G[y, t] = 1, 0
        G = _to_cpdag(G)
    while True:  # backward equivalence search
        delta, op = _best_delete(G, sc)
        if op is None:
            break
        x, y, H = op
        G[x, y] = G[y, x] = 0
        for h in H:
            G[y, h], G[h, y] = 1, 0
            if G[x, h] and G[h, x]:
                G[h, x] = 0
        G = _to_cpdag(G)
    return G
