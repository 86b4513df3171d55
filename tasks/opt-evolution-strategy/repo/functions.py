"""Benchmark objectives (fixed; read by the harness parent process and by the grader).

Every objective is shifted so that its global minimum, 0, lies at a point `o` drawn from the
run's seed; `o` lies in the central 80% of the search box. The optimizer never sees `o`: it
only receives function values from the harness (see run.py).

The instance (shift, and rotation where a function has one) is drawn from
sha256(instance key | function | dim | seed). Tests use the public key "public"; the final
evaluation supplies a different, secret key (file `instance_key.txt`), so instances seen in
tests cannot be reused at the final evaluation.

Definitions follow the usual benchmark suites (Suganthan et al., CEC 2005 technical report;
Hansen et al., BBOB 2009 noiseless functions).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

PUBLIC_KEY = "public"


@dataclass(frozen=True)
class Objective:
    """A vectorized objective: f(X) for X of shape (n, dim) returns shape (n,)."""

    name: str
    dim: int
    lower: np.ndarray
    upper: np.ndarray
    optimum: np.ndarray  # the minimizer; f(optimum) == 0 up to rounding
    func: Callable[[np.ndarray], np.ndarray]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64).reshape(-1, self.dim)
        return np.asarray(self.func(X), dtype=np.float64).reshape(X.shape[0])


def instance_rng(key: str, name: str, dim: int, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{dim}|{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def draw_shift(rng: np.random.Generator, lower: float, upper: float, dim: int) -> np.ndarray:
    margin = 0.1 * (upper - lower)
    return rng.uniform(lower + margin, upper - margin, size=dim)


def random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _rastrigin(dim, rng):
    lo, hi = -5.12, 5.12
    o = draw_shift(rng, lo, hi, dim)

    def f(X):
        z = X - o
        return 10.0 * dim + np.sum(z * z - 10.0 * np.cos(2.0 * math.pi * z), axis=1)

    return lo, hi, o, f


def _rosenbrock(dim, rng):
    lo, hi = -5.0, 10.0
    o = draw_shift(rng, lo, hi, dim)

    def f(X):
        z = X - o + 1.0  # minimum of the classic function is at z = 1, i.e. at x = o
        return np.sum(100.0 * (z[:, :-1] ** 2 - z[:, 1:]) ** 2 + (z[:, :-1] - 1.0) ** 2, axis=1)

    return lo, hi, o, f


def _ackley(dim, rng):
    lo, hi = -32.768, 32.768
    o = draw_shift(rng, lo, hi, dim)

    def f(X):
        z = X - o
        a = -20.0 * np.exp(-0.2 * np.sqrt(np.mean(z * z, axis=1)))
        b = -np.exp(np.mean(np.cos(2.0 * math.pi * z), axis=1))
        return a + b + 20.0 + math.e

    return lo, hi, o, f


# name -> builder(dim, rng) -> (lower, upper, optimum, f)
FUNCTIONS = {
    "rastrigin": _rastrigin,
    "rosenbrock": _rosenbrock,
    "ackley": _ackley,
}


def make_objective(name: str, dim: int, seed: int, key: str = PUBLIC_KEY,
                   builders: dict | None = None) -> Objective:
    builders = FUNCTIONS if builders is None else builders
    if name not in builders:
        raise ValueError(f"unknown function {name!r}; known: {sorted(builders)}")
    lo, hi, o, f = builders[name](dim, instance_rng(key, name, dim, seed))
    lower = np.full(dim, float(lo))
    upper = np.full(dim, float(hi))
    return Objective(name, dim, lower, upper, np.asarray(o, dtype=np.float64), f)
