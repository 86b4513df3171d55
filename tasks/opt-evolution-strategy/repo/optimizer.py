"""The optimizer: the only code you change (the marked region below).

Interface (fixed): `optimize(problem, rng)` minimizes a black-box function and returns nothing.
The harness (run.py, another process) tracks the best point you evaluate; that point is the
result. `rng` is a numpy.random.Generator seeded from the run's seed.

`problem` has:
  dim                   number of variables
  lower, upper          read-only float arrays of shape (dim,): the search box
  budget                total number of evaluations allowed (budget_per_dim * dim)
  evals_used, evals_left
  evaluate(X)           X of shape (n, dim) -> f of shape (n,) (a point of shape (dim,) ->
                        float). Points must be finite and inside the box (ValueError
                        otherwise). Costs n evaluations; a batch larger than evals_left raises
                        BudgetExhausted (a RuntimeError) and nothing of it is evaluated. If that
                        exception escapes optimize(), the run ends normally.

Larger batches cost the same evaluations but fewer round trips to the harness process.
Allowed imports: numpy, math.
"""

import math

import numpy as np

# ---- editable region: from here to the end of the file ----


def sbx_crossover(p1, p2, lo, hi, rng, prob=0.9, eta=15.0):
    """Simulated binary crossover with bounds (Deb & Agrawal 1995; NSGA-II reference code).

    p1, p2: (m, dim) parent pairs. Each pair is crossed with probability `prob`; within a
    crossed pair each variable is recombined with probability 0.5.
    """
    m, dim = p1.shape
    c1, c2 = p1.copy(), p2.copy()
    y1, y2 = np.minimum(p1, p2), np.maximum(p1, p2)
    span = y2 - y1
    do = (rng.random((m, 1)) < prob) & (rng.random((m, dim)) < 0.5) & (span > 1e-14)
    span = np.where(do, span, 1.0)
    u = rng.random((m, dim))

    def betaq(beta):
        alpha = 2.0 - beta ** (-(eta + 1.0))
        small = u <= 1.0 / alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (u * alpha) ** (1.0 / (eta + 1.0))
            b = (1.0 / np.maximum(2.0 - u * alpha, 1e-300)) ** (1.0 / (eta + 1.0))
        return np.where(small, a, b)

    bq1 = betaq(1.0 + 2.0 * (y1 - lo) / span)
    bq2 = betaq(1.0 + 2.0 * (hi - y2) / span)
    ch1 = np.clip(0.5 * ((y1 + y2) - bq1 * span), lo, hi)
    ch2 = np.clip(0.5 * ((y1 + y2) + bq2 * span), lo, hi)
    swap = rng.random((m, dim)) < 0.5
    ch1, ch2 = np.where(swap, ch2, ch1), np.where(swap, ch1, ch2)
    c1 = np.where(do, ch1, c1)
    c2 = np.where(do, ch2, c2)
    return c1, c2


def polynomial_mutation(X, lo, hi, rng, prob, eta=20.0):
    """Polynomial mutation with bounds (Deb & Goyal 1996; NSGA-II reference code)."""
    n, dim = X.shape
    do = rng.random((n, dim)) < prob
    width = hi - lo
    d1 = (X - lo) / width
    d2 = (hi - X) / width
    u = rng.random((n, dim))
    p = 1.0 / (eta + 1.0)
    left = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - d1) ** (eta + 1.0)
    right = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * (1.0 - d2) ** (eta + 1.0)
    dq = np.where(u < 0.5, left ** p - 1.0, 1.0 - right ** p)
    return np.where(do, np.clip(X + dq * width, lo, hi), X)


def binary_tournament(f, n, rng):
    """Indices of n winners of binary tournaments (lower f wins)."""
    a = rng.integers(0, f.size, n)
    b = rng.integers(0, f.size, n)
    return np.where(f[a] <= f[b], a, b)


def optimize(problem, rng):
    """Real-coded genetic algorithm (Deb & Agrawal 1995; Deb 2001): binary tournament
    selection, simulated binary crossover (SBX), polynomial mutation and generational
    replacement with elitism, with the usual parameters: population 100, crossover probability
    0.9 with eta_c = 15, mutation probability 1/dim per variable with eta_m = 20.
    """
    dim, lo, hi = problem.dim, problem.lower, problem.upper
    pop_size = 100
    X = lo + rng.random((pop_size, dim)) * (hi - lo)
    f = problem.evaluate(X)
    while problem.evals_left > 0:
        n_off = min(pop_size, problem.evals_left)
        m = (n_off + 1) // 2
        idx = binary_tournament(f, 2 * m, rng)
        c1, c2 = sbx_crossover(X[idx[:m]], X[idx[m:]], lo, hi, rng)
        children = polynomial_mutation(np.vstack([c1, c2])[:n_off], lo, hi, rng, prob=1.0 / dim)
        fc = problem.evaluate(children)
        # generational replacement with elitism: the children replace the parents, and the
        # best parent replaces the worst child if it is better
        if n_off < pop_size:
            break
        b, w = int(np.argmin(f)), int(np.argmax(fc))
        if f[b] < fc[w]:
            children[w], fc[w] = X[b], f[b]
        X, f = children, fc
