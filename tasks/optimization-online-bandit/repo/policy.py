"""The bandit policy (editable below the marked line).

The harness plays `n_runs` independent bandit instances at once, for `horizon` steps; each step
it calls `select(t, contexts)` (one arm per run) and then `update(t, arms, rewards)` with the
rewards of the arms just pulled. Rewards are 0 or 1. In a contextual setting (`dim` > 0)
`contexts` has shape (n_runs, n_arms, dim) and the expected reward of arm a in run r is
<theta_r, contexts[r, a]> for an unknown theta_r; otherwise `contexts` is None and each arm has
an unknown mean, which may change at unknown times in some settings.
"""

import math

import numpy as np

# ---- editable region (lines 16 to end): the policy ----


class Policy:
    """epsilon-greedy (Sutton & Barto 2018, ch. 2): pull a uniformly random arm with probability
    epsilon = 0.1, otherwise the arm with the highest estimated mean (sample means; in a
    contextual setting, the ridge-regression estimate of theta)."""

    EPSILON = 0.1
    RIDGE = 1.0

    def __init__(self, n_runs, n_arms, horizon, dim, rng):
        self.R, self.K, self.T, self.d, self.rng = n_runs, n_arms, horizon, dim, rng
        self.rows = np.arange(n_runs)
        if dim:
            self.A_inv = np.tile(np.eye(dim) / self.RIDGE, (n_runs, 1, 1))
            self.b = np.zeros((n_runs, dim))
        else:
            self.n = np.zeros((n_runs, n_arms))
            self.s = np.zeros((n_runs, n_arms))

    def estimates(self, contexts):
        if self.d:
            theta = np.einsum("rij,rj->ri", self.A_inv, self.b)
            return np.einsum("rkd,rd->rk", contexts, theta)
        return self.s / np.maximum(self.n, 1.0)

    def select(self, t, contexts):
        est = self.estimates(contexts) + 1e-9 * self.rng.random((self.R, self.K))
        greedy = np.argmax(est, axis=1)
        explore = self.rng.random(self.R) < self.EPSILON
        random_arm = self.rng.integers(0, self.K, self.R)
        self.last_contexts = contexts
        return np.where(explore, random_arm, greedy)

    def update(self, t, arms, rewards):
        if self.d:
            x = self.last_contexts[self.rows, arms]  # (R, d)
            Ax = np.einsum("rij,rj->ri", self.A_inv, x)
            self.A_inv -= Ax[:, :, None] * Ax[:, None, :] / (1.0 + (x * Ax).sum(1))[:, None, None]
            self.b += rewards[:, None] * x
        else:
            self.n[self.rows, arms] += 1.0
            self.s[self.rows, arms] += rewards
