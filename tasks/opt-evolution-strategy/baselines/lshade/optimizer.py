def optimize(problem, rng):
    """L-SHADE (Tanabe & Fukunaga, CEC 2014): SHADE's current-to-pbest/1/bin with an external
    archive and success-history adaptation of F and CR (Tanabe & Fukunaga 2013), plus linear
    population size reduction from 18 * dim to 4 over the evaluation budget. Parameters as
    published: H = 6 memory slots, p = 0.11, archive size 2.6 * population, M_F = M_CR = 0.5
    initially, terminal CR value once M_CR reaches 0.
    """
    dim, lo, hi = problem.dim, problem.lower, problem.upper
    max_evals = problem.budget
    n_init, n_min, H, p_best, arc_rate = 18 * dim, 4, 6, 0.11, 2.6
    pop_size = n_init
    X = lo + rng.random((pop_size, dim)) * (hi - lo)
    f = problem.evaluate(X)
    M_F = np.full(H, 0.5)
    M_CR = np.full(H, 0.5)
    k = 0
    archive = np.empty((0, dim))
    while problem.evals_left > 0:
        n = pop_size
        # control parameters from a random memory slot
        r = rng.integers(0, H, n)
        mcr = M_CR[r]
        CR = np.where(mcr < 0, 0.0, np.clip(mcr + 0.1 * rng.standard_normal(n), 0.0, 1.0))
        F = M_F[r] + 0.1 * rng.standard_cauchy(n)
        while np.any(F <= 0):
            bad = F <= 0
            F[bad] = M_F[r[bad]] + 0.1 * rng.standard_cauchy(int(bad.sum()))
        F = np.minimum(F, 1.0)
        # current-to-pbest/1 with archive
        order = np.argsort(f, kind="stable")
        n_best = max(2, int(round(p_best * n)))
        pbest = X[order[rng.integers(0, n_best, n)]]
        rows = np.arange(n)
        r1 = rng.integers(0, n, n)
        while np.any(r1 == rows):
            bad = r1 == rows
            r1[bad] = rng.integers(0, n, int(bad.sum()))
        union = np.vstack([X, archive]) if archive.shape[0] else X
        r2 = rng.integers(0, union.shape[0], n)
        while np.any((r2 == rows) | (r2 == r1)):
            bad = (r2 == rows) | (r2 == r1)
            r2[bad] = rng.integers(0, union.shape[0], int(bad.sum()))
        V = X + F[:, None] * (pbest - X) + F[:, None] * (X[r1] - union[r2])
        V = np.where(V < lo, (lo + X) / 2.0, V)
        V = np.where(V > hi, (hi + X) / 2.0, V)
        cross = rng.random((n, dim)) < CR[:, None]
        cross[rows, rng.integers(0, dim, n)] = True
        U = np.where(cross, V, X)
        m = min(n, problem.evals_left)
        fu = problem.evaluate(U[:m])
        fu = np.concatenate([fu, np.full(n - m, np.inf)])
        improved = fu < f
        better_eq = fu <= f
        # archive the replaced parents, then trim it at random
        if np.any(improved):
            archive = np.vstack([archive, X[improved]])
        cap = int(round(arc_rate * n))
        if archive.shape[0] > cap:
            archive = archive[rng.permutation(archive.shape[0])[:cap]]
        # success-history memory update (weighted Lehmer mean, weights = improvements)
        if np.any(improved):
            dfit = f[improved] - fu[improved]
            wts = dfit / dfit.sum()
            sF, sCR = F[improved], CR[improved]
            M_F[k] = np.sum(wts * sF * sF) / np.sum(wts * sF)
            if M_CR[k] < 0 or np.max(sCR) == 0:
                M_CR[k] = -1.0  # terminal value: CR = 0 from this slot on
            else:
                M_CR[k] = np.sum(wts * sCR * sCR) / np.sum(wts * sCR)
            k = (k + 1) % H
        X = np.where(better_eq[:, None], U, X)
        f = np.where(better_eq, fu, f)
        # linear population size reduction
        used = max_evals - problem.evals_left
        new_size = int(round((n_min - n_init) / max_evals * used + n_init))
        new_size = max(n_min, new_size)
        if new_size < pop_size:
            keep = np.argsort(f, kind="stable")[:new_size]
            X, f = X[keep], f[keep]
            pop_size = new_size
            cap = int(round(arc_rate * pop_size))
            if archive.shape[0] > cap:
                archive = archive[rng.permutation(archive.shape[0])[:cap]]
