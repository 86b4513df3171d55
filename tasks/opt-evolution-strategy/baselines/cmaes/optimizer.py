def cma_es_run(problem, rng, mean, sigma, lam, max_evals):
    """One run of CMA-ES with rank-one and rank-mu covariance update and cumulative step-size
    adaptation, as in Hansen's tutorial (arXiv:1604.00772, default parameters, positive
    recombination weights). Stops on the usual termination criteria, on `max_evals`
    evaluations or when the evaluation budget is spent. Returns the evaluations used.

    Box constraints: candidates outside the box are repaired by clipping, and the repaired
    steps are used in the update with their Mahalanobis length capped (Hansen 2011,
    "Injecting external solutions into CMA-ES", arXiv:1110.4181).
    """
    n, lo, hi = problem.dim, problem.lower, problem.upper
    sigma0 = sigma
    mu = lam // 2
    w = np.log((lam + 1) / 2.0) - np.log(np.arange(1, mu + 1))
    w /= w.sum()
    mueff = 1.0 / np.sum(w ** 2)
    cc = (4.0 + mueff / n) / (n + 4.0 + 2.0 * mueff / n)
    cs = (mueff + 2.0) / (n + mueff + 5.0)
    c1 = 2.0 / ((n + 1.3) ** 2 + mueff)
    cmu = min(1.0 - c1, 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) ** 2 + mueff))
    damps = 1.0 + 2.0 * max(0.0, math.sqrt((mueff - 1.0) / (n + 1.0)) - 1.0) + cs
    chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))
    y_cap = math.sqrt(n) + 2.0 * n / (n + 2.0)
    pc = np.zeros(n)
    ps = np.zeros(n)
    B = np.eye(n)
    D = np.ones(n)
    C = np.eye(n)
    invsqrtC = np.eye(n)
    eigen_every = max(1, int(lam / (c1 + cmu) / n / 10.0))
    hist_len = 10 + int(math.ceil(30.0 * n / lam))
    best_hist = []
    max_iter = 100 + 50 * (n + 3) ** 2 / math.sqrt(lam)
    used, g = 0, 0
    while problem.evals_left > 0 and used < max_evals:
        g += 1
        Z = rng.standard_normal((lam, n))
        Y = (Z * D) @ B.T
        X = mean + sigma * Y
        Xc = np.clip(X, lo, hi)
        k = min(lam, problem.evals_left)
        f = problem.evaluate(Xc[:k])
        used += k
        if k < lam:
            break
        out = np.any(X != Xc, axis=1)
        if np.any(out):
            Yc = (Xc[out] - mean) / sigma
            maha = np.linalg.norm(Yc @ invsqrtC, axis=1)
            Yc *= np.minimum(1.0, y_cap / np.maximum(maha, 1e-300))[:, None]
            Y[out] = Yc
        order = np.argsort(f, kind="stable")
        old = mean
        Ysel = Y[order[:mu]]
        yw = w @ Ysel
        mean = old + sigma * yw
        ps = (1.0 - cs) * ps + math.sqrt(cs * (2.0 - cs) * mueff) * (invsqrtC @ yw)
        ps_norm = np.linalg.norm(ps)
        hsig = ps_norm / math.sqrt(1.0 - (1.0 - cs) ** (2 * g)) / chi_n < 1.4 + 2.0 / (n + 1)
        pc = (1.0 - cc) * pc + hsig * math.sqrt(cc * (2.0 - cc) * mueff) * yw
        C = ((1.0 - c1 - cmu) * C
             + c1 * (np.outer(pc, pc) + (1 - hsig) * cc * (2.0 - cc) * C)
             + cmu * (Ysel.T * w) @ Ysel)
        sigma *= math.exp((cs / damps) * (ps_norm / chi_n - 1.0))
        if g % eigen_every == 0:
            C = np.triu(C) + np.triu(C, 1).T
            evals, B = np.linalg.eigh(C)
            D = np.sqrt(np.maximum(evals, 1e-300))
            invsqrtC = (B / D) @ B.T
        fs = f[order]
        if fs[0] == fs[int(math.ceil(0.7 * lam)) - 1]:
            sigma *= math.exp(0.2 + cs / damps)  # flat fitness: escape
        # termination criteria (Hansen's tutorial, appendix B.3)
        best_hist.append(fs[0])
        recent = best_hist[-hist_len:]
        if g >= hist_len and max(recent) - min(recent) < 1e-12 and fs[-1] - fs[0] < 1e-12:
            break
        if sigma * max(np.max(np.abs(pc)), np.sqrt(np.max(np.diag(C)))) < 1e-12 * sigma0:
            break
        if D.max() > 1e7 * D.min():
            break
        if np.all(mean == mean + 0.2 * sigma * np.sqrt(np.diag(C))):
            break
        if np.all(mean == mean + 0.1 * sigma * D[g % n] * B[:, g % n]):
            break
        if g > max_iter:
            break
    return used


def optimize(problem, rng):
    """CMA-ES (Hansen & Ostermeier 2001; Hansen 2016 tutorial) with the default population
    size 4 + floor(3 ln n) and sigma0 = 0.3 * box width, restarted from a new random mean
    with the same parameters whenever a run terminates, until the budget is spent.
    """
    n, lo, hi = problem.dim, problem.lower, problem.upper
    lam = 4 + int(3 * math.log(n))
    while problem.evals_left > 0:
        mean = lo + rng.random(n) * (hi - lo)
        cma_es_run(problem, rng, mean, 0.3 * float(np.max(hi - lo)), lam, problem.evals_left)
