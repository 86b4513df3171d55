"""Benchmark objectives (fixed). Only the harness parent process (run.py) and the grader use
this module; the optimizer never sees an objective, only function values.

Every function is shifted and rotated, as in the CEC 2013/2014/2017 suites:

    f(x) = g(R (x - o))        (Rosenbrock: g(R (x - o) + 1), whose minimum is at z = 1)

with a random optimum `o` in the central 80% of the search box and a random rotation `R`
(Haar-distributed orthogonal matrix). The global minimum is f(o) = 0. Neither the location of
the optimum nor the coordinate axes carry information an optimizer could exploit.

The instance (o, R) is drawn from sha256(instance key | function | dim | seed). Tests use the
public key below; the final evaluation supplies a different, secret key (over the environment's
secrets channel, never a file), so no instance seen in a test is reused at the final evaluation.

References: Suganthan et al., "Problem definitions and evaluation criteria for the CEC 2005
special session on real-parameter optimization" (2005); Liang, Qu & Suganthan, CEC 2014
technical report (2013); Hansen, Finck, Ros & Auger, "Real-parameter black-box optimization
benchmarking 2009: noiseless functions definitions", INRIA RR-6829.
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
    optimum: np.ndarray  # the minimizer o; f(o) == 0 up to rounding
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


def rastrigin(z: np.ndarray) -> np.ndarray:
    return 10.0 * z.shape[1] + np.sum(z * z - 10.0 * np.cos(2.0 * math.pi * z), axis=1)


def rosenbrock(z: np.ndarray) -> np.ndarray:
    return np.sum(100.0 * (z[:, :-1] ** 2 - z[:, 1:]) ** 2 + (z[:, :-1] - 1.0) ** 2, axis=1)


def ackley(z: np.ndarray) -> np.ndarray:
    a = -20.0 * np.exp(-0.2 * np.sqrt(np.mean(z * z, axis=1)))
    b = -np.exp(np.mean(np.cos(2.0 * math.pi * z), axis=1))
    return a + b + 20.0 + math.e


def shifted_rotated(g: Callable, lower: float, upper: float, offset: float = 0.0) -> Callable:
    """A builder(dim, rng) -> (lower, upper, o, f) for f(x) = g(R (x - o) + offset)."""

    def build(dim: int, rng: np.random.Generator):
        o = draw_shift(rng, lower, upper, dim)
        R = random_rotation(rng, dim)

        def f(X):
            return g((X - o) @ R.T + offset)

        return lower, upper, o, f

    return build


# name -> builder(dim, rng) -> (lower, upper, optimum, f); classic search domains
FUNCTIONS = {
    "rastrigin": shifted_rotated(rastrigin, -5.12, 5.12),
    "rosenbrock": shifted_rotated(rosenbrock, -5.0, 10.0, offset=1.0),
    "ackley": shifted_rotated(ackley, -32.768, 32.768),
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
