"""Bandit environments (fixed). Only the harness parent process (run.py) and the grader use this
module; the policy never sees a mean, a parameter or a change point, only the rewards of the
arms it pulled (and the contexts, in a contextual setting).

A setting is a spec (kind, n_arms, horizon, n_runs and the kind's parameters). One run plays
`n_runs` independent instances at once, each drawn from sha256(instance key | setting | seed |
stream). Kinds:

- bernoulli: fixed means mu_a ~ U(lo, hi), reward ~ Bernoulli(mu_a).
- piecewise: `n_changes` change points at random times (every segment at least `min_segment`
  steps); at each change point every arm's mean is redrawn from U(lo, hi).
- linear: each step, every arm has a context x = (1/2, z/2) with z uniform in the unit ball of
  R^(dim-1); the mean reward is <theta, x> = (1 + <u, z>)/2 in [0, 1] for an unknown
  theta = (1, u), |u| = 1; reward ~ Bernoulli(<theta, x>).

Metric: the pseudo-regret sum_t (max_a mu_t(a) - mu_t(a_t)) summed over the runs, divided by the
same sum for the uniformly random policy, sum_t (max_a mu_t(a) - mean_a mu_t(a)). 0 is the
oracle that knows the means (the bound); 1 is uniform random play.

Tests use the public key below; the final evaluation supplies a different, secret key over the
environment's secrets channel, so no instance seen in a test is reused at the final evaluation.
"""

from __future__ import annotations

import hashlib

import numpy as np

PUBLIC_KEY = "public"

SETTINGS = {
    "bernoulli-k10": dict(kind="bernoulli", n_arms=10, horizon=4000, n_runs=200, lo=0.0, hi=1.0),
    "linear-d6-k10": dict(kind="linear", n_arms=10, horizon=3000, n_runs=100, dim=6),
    "piecewise-k5": dict(
        kind="piecewise", n_arms=5, horizon=5000, n_runs=200, lo=0.0, hi=1.0, n_changes=4,
        min_segment=500,
    ),
}
KINDS = ("bernoulli", "linear", "piecewise")


def check_spec(spec: dict) -> dict:
    """The spec with its fields checked; ValueError saying what is wrong."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"setting kind must be one of {KINDS}, got {kind!r}")
    for field in ("n_arms", "horizon", "n_runs"):
        if not isinstance(spec.get(field), int) or spec[field] < 1:
            raise ValueError(f"setting {field} must be a positive integer, got {spec.get(field)!r}")
    if spec["n_arms"] < 2 or spec["n_arms"] > 1000:
        raise ValueError(f"n_arms must be in [2, 1000], got {spec['n_arms']}")
    if kind == "linear" and (not isinstance(spec.get("dim"), int) or spec["dim"] < 2):
        raise ValueError(f"a linear setting needs dim >= 2, got {spec.get('dim')!r}")
    if kind == "piecewise":
        need = (spec["n_changes"] + 1) * spec["min_segment"]
        if need > spec["horizon"]:
            raise ValueError(f"{spec['n_changes']} changes of min_segment {spec['min_segment']} "
                             f"do not fit in horizon {spec['horizon']}")
    return spec


def _rng(key: str, name: str, seed: int, stream: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _unit_ball(rng: np.random.Generator, shape: tuple, dim: int) -> np.ndarray:
    g = rng.standard_normal((*shape, dim))
    g /= np.linalg.norm(g, axis=-1, keepdims=True)
    return g * rng.random(shape)[..., None] ** (1.0 / dim)


class Instance:
    """n_runs independent bandit instances. Call `step(t)` for t = 0, 1, ... in order: it returns
    (contexts or None, means of shape (n_runs, n_arms)) and advances the context stream."""

    def __init__(self, name: str, spec: dict, seed: int, key: str):
        self.spec = check_spec(dict(spec))
        self.kind = spec["kind"]
        R, K, T = spec["n_runs"], spec["n_arms"], spec["horizon"]
        self.n_runs, self.n_arms, self.horizon = R, K, T
        self.dim = spec.get("dim", 0) if self.kind == "linear" else 0
        rng = _rng(key, name, seed, "instance")
        self.reward_rng = _rng(key, name, seed, "rewards")
        self._t = 0
        if self.kind == "bernoulli":
            self._means = rng.uniform(spec["lo"], spec["hi"], (R, K))
        elif self.kind == "piecewise":
            n, m = spec["n_changes"], spec["min_segment"]
            # segment lengths: min_segment each plus a uniform share of the slack
            cuts = np.sort(rng.integers(0, T - (n + 1) * m + 1, (R, n)), axis=1)
            self._changes = cuts + m * np.arange(1, n + 1)
            self._segments = rng.uniform(spec["lo"], spec["hi"], (R, n + 1, K))
            self._seg = np.zeros(R, dtype=np.int64)
        else:
            u = rng.standard_normal((R, self.dim - 1))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            self._u = u
            self.context_rng = _rng(key, name, seed, "contexts")

    def step(self, t: int):
        if t != self._t:
            raise ValueError(f"steps must be taken in order: expected {self._t}, got {t}")
        self._t += 1
        if self.kind == "bernoulli":
            return None, self._means
        if self.kind == "piecewise":
            self._seg = (t >= self._changes).sum(axis=1)
            return None, self._segments[np.arange(self.n_runs), self._seg]
        z = _unit_ball(self.context_rng, (self.n_runs, self.n_arms), self.dim - 1)
        ctx = np.concatenate([np.full((*z.shape[:2], 1), 0.5), 0.5 * z], axis=2)
        means = 0.5 + 0.5 * np.einsum("rkd,rd->rk", z, self._u)
        return ctx, means

    def rewards(self, means: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Bernoulli rewards of the pulled arms (one uniform per run and step)."""
        u = self.reward_rng.random(self.n_runs)
        return (u < means[np.arange(self.n_runs), arms]).astype(np.uint8)


def regret_of(name: str, spec: dict, seed: int, key: str, arms: np.ndarray) -> dict:
    """Replays the instance and scores the pulled arms (shape (horizon, n_runs))."""
    inst = Instance(name, spec, seed, key)
    arms = np.asarray(arms)
    if arms.shape != (inst.horizon, inst.n_runs):
        raise ValueError(f"arms must have shape ({inst.horizon}, {inst.n_runs}), got {arms.shape}")
    if arms.min() < 0 or arms.max() >= inst.n_arms:
        raise ValueError(f"arms must lie in [0, {inst.n_arms})")
    regret = uniform = 0.0
    rows = np.arange(inst.n_runs)
    for t in range(inst.horizon):
        _, means = inst.step(t)
        best = means.max(axis=1)
        regret += float((best - means[rows, arms[t]]).sum())
        uniform += float((best - means.mean(axis=1)).sum())
    return {"regret": regret, "uniform_regret": uniform, "normalized_regret": regret / uniform}
