def optimize(problem, rng):
    """DE/rand/1/bin (Storn & Price 1997) with the classic control parameters F = 0.5 and
    CR = 0.9, and a population of 50 (Storn & Price's 5-10 x dim rule is meant for much
    larger budgets: at 1000 x dim evaluations it leaves only 100-200 generations). Mutant
    coordinates that leave the box are set halfway between the parent and the violated bound.
    """
    dim, lo, hi = problem.dim, problem.lower, problem.upper
    pop_size, F, CR = 50, 0.5, 0.9
    X = lo + rng.random((pop_size, dim)) * (hi - lo)
    f = problem.evaluate(X)
    rows = np.arange(pop_size)
    while problem.evals_left > 0:
        # three distinct indices r1, r2, r3, all different from the target i
        r = np.empty((pop_size, 3), dtype=np.int64)
        for k in range(3):
            r[:, k] = rng.integers(0, pop_size, pop_size)
            bad = (r[:, k] == rows) | np.any(r[:, :k] == r[:, [k]], axis=1)
            while np.any(bad):
                r[bad, k] = rng.integers(0, pop_size, int(bad.sum()))
                bad = (r[:, k] == rows) | np.any(r[:, :k] == r[:, [k]], axis=1)
        V = X[r[:, 0]] + F * (X[r[:, 1]] - X[r[:, 2]])
        V = np.where(V < lo, (X + lo) / 2.0, V)
        V = np.where(V > hi, (X + hi) / 2.0, V)
        # binomial crossover; j_rand guarantees at least one mutant coordinate
        cross = rng.random((pop_size, dim)) < CR
        cross[rows, rng.integers(0, dim, pop_size)] = True
        U = np.where(cross, V, X)
        n = min(pop_size, problem.evals_left)
        fu = problem.evaluate(U[:n])
        better = fu <= f[:n]
        X[:n][better] = U[:n][better]
        f[:n][better] = fu[better]
