
FUNCTIONS = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
POP = 100
MAX_DEPTH = 8
P_CROSSOVER = 0.9  # else subtree mutation (Koza 1992; Poli, Langdon & McPhee 2008)


def terminals(n_vars):
    """The terminal set: the variables and the constant 1 (Nguyen et al.'s set with a constant)."""
    return [f"x{i}" for i in range(n_vars)] + ["1"]


def random_tree(rng, n_vars, depth, full):
    """A tree of at most `depth` levels, as prefix tokens: Koza's full or grow method."""
    terms = terminals(n_vars)
    if depth <= 1 or (not full and rng.random() < len(terms) / (len(terms) + len(FUNCTIONS))):
        return [terms[rng.integers(len(terms))]]
    f = FUNCTIONS[rng.integers(len(FUNCTIONS))]
    out = [f]
    for _ in range(ARITY[f]):
        out += random_tree(rng, n_vars, depth - 1, full)
    return out


def ramped_half_and_half(rng, n_vars, n, depths=(2, 6)):
    """Koza (1992): depths spread over the range, half full and half grow trees."""
    return [random_tree(rng, n_vars, int(rng.integers(depths[0], depths[1] + 1)), i % 2 == 0)
            for i in range(n)]


def subtree_end(tree, i):
    """The index one past the subtree that starts at token i."""
    need = 1
    while need:
        need += ARITY.get(tree[i], 0) - 1
        i += 1
    return i


def depth(tree):
    """The number of levels of a prefix tree."""
    stack = []
    for tok in reversed(tree):
        stack.append(1 + max((stack.pop() for _ in range(ARITY.get(tok, 0))), default=0))
    return stack[0]


def pick_node(rng, tree):
    """Koza's 90/10 rule: a function node with probability 0.9 where the tree has one."""
    inner = [i for i, tok in enumerate(tree) if tok in ARITY]
    if inner and rng.random() < 0.9:
        return inner[rng.integers(len(inner))]
    leaves = [i for i, tok in enumerate(tree) if tok not in ARITY]
    return leaves[rng.integers(len(leaves))]


def replace(tree, i, sub):
    return tree[:i] + sub + tree[subtree_end(tree, i):]


def crossover(rng, a, b):
    """Subtree crossover: a subtree of a replaced by a subtree of b."""
    i, j = pick_node(rng, a), pick_node(rng, b)
    return replace(a, i, b[j:subtree_end(b, j)])


def mutation(rng, a, n_vars):
    """Subtree mutation: a subtree of a replaced by a random grow tree of depth <= 4."""
    return replace(a, pick_node(rng, a), random_tree(rng, n_vars, 4, False))


def vary(rng, parents, n_vars):
    """One offspring from the selected parents; too deep or too long returns the first parent
    (Koza's limit)."""
    if rng.random() < P_CROSSOVER:
        child = crossover(rng, parents[0], parents[1])
    else:
        child = mutation(rng, parents[0], n_vars)
    if len(child) > MAX_TOKENS or depth(child) > MAX_DEPTH:
        return list(parents[0])
    return child


def evolve(X, evaluate, budget, rng, select):
    """Generational GP with one elite; `select(errors, trees, rng, k)` returns k parents'
    indices.
    The answer is the tree of lowest training MSE ever evaluated."""
    n_vars = X.shape[1]
    pop = ramped_half_and_half(rng, n_vars, min(POP, budget))
    errors = evaluate([" ".join(t) for t in pop])
    budget -= len(pop)
    best, best_mse = None, math.inf
    while True:
        mse = np.mean(errors**2, axis=1)
        i = int(np.argmin(mse))
        if best is None or mse[i] < best_mse:
            best, best_mse = pop[i], mse[i]
        if budget <= 0:
            return " ".join(best)
        n = min(POP - 1, budget)
        parents = select(errors, pop, rng, 2 * n)
        kids = [vary(rng, [pop[parents[2 * k]], pop[parents[2 * k + 1]]], n_vars)
                for k in range(n)]
        kid_errors = evaluate([" ".join(t) for t in kids])
        budget -= n
        pop, errors = [pop[i]] + kids, np.vstack([errors[i:i + 1], kid_errors])


def lexicase(errors, trees, rng, k):
    """epsilon-lexicase selection (La Cava, Spector & Danai, GECCO 2016): for each selection
    the cases in a fresh random order, each keeping the candidates within epsilon of the best
    survivor on it, epsilon the median absolute deviation of the population's errors on that
    case (Spector 2012's lexicase, with La Cava's epsilon for continuous errors); a random
    survivor is chosen. The k selections run side by side, one case of each per step."""
    finite = np.where(np.isfinite(errors), errors, 1e300)
    eps = np.median(np.abs(finite - np.median(finite, axis=0)), axis=0)
    n, m = finite.shape
    order = np.argsort(rng.random((k, m)), axis=1)
    alive = np.ones((k, n), dtype=bool)
    for step in range(m):
        cases = order[:, step]
        e = finite[:, cases].T  # (k, n)
        best = np.where(alive, e, np.inf).min(axis=1)
        alive &= e <= (best + eps[cases])[:, None]
    pick = rng.random((k, n)) * alive
    return np.argmax(pick, axis=1)


def search(X, evaluate, budget, rng):
    """Tree GP with epsilon-lexicase selection; otherwise the standard GP's operators."""
    return evolve(X, evaluate, budget, rng, lexicase)
