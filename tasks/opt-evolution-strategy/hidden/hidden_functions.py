"""Objectives used only by hidden settings (final evaluation only).

Same conventions as functions.py: builder(dim, rng) -> (lower, upper, optimum, f), minimum
f(o) = 0, instance drawn from the instance key, function name, dim and seed. Self-contained
(numpy only) so that the grader can import it by path.
"""

from __future__ import annotations

import numpy as np


def _shift(rng, lo, hi, dim):
    margin = 0.1 * (hi - lo)
    return rng.uniform(lo + margin, hi - margin, size=dim)


def _rotation(rng, dim):
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _ellipsoid(dim, rng):
    """Shifted rotated high-conditioned elliptic function (CEC 2005 F3, CEC 2014 F1; BBOB
    f10): f(x) = sum_i 10^(6 (i-1)/(D-1)) z_i^2 with z = R (x - o), condition number 1e6.
    """
    lo, hi = -5.0, 5.0
    o = _shift(rng, lo, hi, dim)
    R = _rotation(rng, dim)
    w = 10.0 ** (6.0 * np.arange(dim) / (dim - 1))

    def f(X):
        z = (X - o) @ R.T
        return np.sum(w * z * z, axis=1)

    return lo, hi, o, f


BUILDERS = {"ellipsoid": _ellipsoid}
