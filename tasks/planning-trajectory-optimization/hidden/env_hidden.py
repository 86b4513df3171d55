"""Acrobot swing-up (hidden setting): Spong's acrobot with a continuous elbow torque."""

from __future__ import annotations

import numpy as np

from envs import ControlEnv


class Acrobot(ControlEnv):
    """Two-link underactuated pendulum (the 'book' dynamics of Sutton & Barto / Spong 1995
    used by gymnasium's Acrobot-v1), torque only at the elbow, started hanging down
    (q1 = 0 down). State (q1, q2, dq1, dq2). Reward: the tip's height, rescaled to [0, 1],
    plus a bonus for the tip near the top, minus a small torque cost."""

    name = "acrobot"
    state_dim = 4
    act_dim = 1
    dt = 0.05
    episode_len = 200
    budget = 5000
    max_horizon = 80
    horizon = 25
    noise_std = 0.02
    vel_idx = (2, 3)
    tag = 4

    def sample_params(self, rng):
        return {
            "m1": 1.0 * rng.uniform(0.9, 1.1),
            "m2": 1.0 * rng.uniform(0.9, 1.1),
            "l1": 1.0,
            "l2": 1.0,
            "lc1": 0.5,
            "lc2": 0.5,
            "i1": 1.0,
            "i2": 1.0,
            "g": 9.8,
            "max_torque": 3.0,
        }

    def sample_init(self, rng):
        return rng.uniform(-0.1, 0.1, size=4)

    substeps = 2

    def step(self, x, a, t=0):
        p = self.params
        m1, m2, l1, l2, lc1, lc2, i1, i2, g = (
            p["m1"], p["m2"], p["l1"], p["l2"], p["lc1"], p["lc2"], p["i1"], p["i2"], p["g"]
        )
        a0 = np.clip(a[:, 0], -1.0, 1.0)
        tau = p["max_torque"] * a0
        q1, q2, dq1, dq2 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        s1, s12 = np.sin(q1), np.sin(q1 + q2)
        tip_x = l1 * s1 + l2 * s12
        top = l1 + l2
        tip_dy = top + l1 * np.cos(q1) + l2 * np.cos(q1 + q2)  # depth of the tip below the top
        reward = (
            0.5 * (1.0 - tip_dy / (2.0 * top))
            + 0.5 * np.exp(-(tip_x * tip_x + tip_dy * tip_dy) / 0.5)
            - 0.01 * a0 * a0
        )
        # the 'book' equations of motion, semi-implicit Euler substeps
        k = m2 * l1 * lc2
        d1c, d1k = m1 * lc1**2 + m2 * (l1**2 + lc2**2) + i1 + i2, 2.0 * k
        d2c = m2 * lc2**2 + i2
        g1, g2 = (m1 * lc1 + m2 * l1) * g, m2 * lc2 * g
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            c2, s2 = np.cos(q2), np.sin(q2)
            d1 = d1c + d1k * c2
            d2 = d2c + k * c2
            phi2 = g2 * np.sin(q1 + q2)
            phi1 = -k * s2 * dq2 * (dq2 + 2.0 * dq1) + g1 * np.sin(q1) + phi2
            ddq2 = (tau + d2 / d1 * phi1 - k * s2 * dq1 * dq1 - phi2) / (d2c - d2 * d2 / d1)
            ddq1 = -(d2 * ddq2 + phi1) / d1
            dq1 = np.clip(dq1 + h * ddq1, -4 * np.pi, 4 * np.pi)
            dq2 = np.clip(dq2 + h * ddq2, -9 * np.pi, 9 * np.pi)
            q1 = q1 + h * dq1
            q2 = q2 + h * dq2
        return np.stack([q1, q2, dq1, dq2], axis=1), reward

