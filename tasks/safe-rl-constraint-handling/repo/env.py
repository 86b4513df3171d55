"""Fixed file. Vectorized hazard-navigation environments in the style of Safety-Gymnasium's
Goal tasks (Ray, Achiam & Amodei 2019; Ji et al. 2023), written in numpy.

A body (a point mass with force control, or a car with forward force and steering) moves in a
square arena with circular hazards. Each step it earns the decrease of its distance to the goal
(plus a bonus of 1 when it reaches the goal, which then moves), and costs 1 whenever it is
inside a hazard. Hazards, goal and start are drawn anew for every episode from the layout's
distribution. All envs of a batch run episodes of the same fixed length in lockstep.

Observation (body frame): velocity (2), goal vector (2), goal distance (1),
K nearest hazards: vector (2) and signed distance to its edge (1) each, heading-free.
"""
from __future__ import annotations

import numpy as np

OBS_K = 4                    # nearest hazards observed
OBS_DIM = 5 + 3 * OBS_K
ACT_DIM = 2
DT = 0.1


class NavEnv:
    """n parallel envs of one layout; step() takes actions (n, 2) clipped to [-1, 1]."""

    def __init__(self, layout: dict, n: int, seed: int):
        self.body = layout["body"]               # "point" | "car"
        self.half = float(layout["arena"])        # arena is [-half, half]^2
        self.n_haz = int(layout["hazards"])
        self.r_haz = float(layout["hazard_radius"])
        self.r_goal = float(layout.get("goal_radius", 0.3))
        self.horizon = int(layout.get("horizon", 200))
        self.cluster = float(layout.get("cluster", 0.0))  # >0: hazards pulled towards the goal
        self.n = int(n)
        self.rng = np.random.default_rng(seed)
        self.t = 0

    # -- sampling -----------------------------------------------------------------------
    def _free_points(self, m, avoid, margin):
        """m points per env, each at least `margin` from the edges of the hazards in `avoid`."""
        out = np.empty((self.n, m, 2))
        for j in range(m):
            pts = self.rng.uniform(-self.half + 0.2, self.half - 0.2, size=(self.n, 2))
            for _ in range(50):
                d = np.linalg.norm(pts[:, None, :] - avoid, axis=2) - self.r_haz if avoid.shape[1] else np.full((self.n, 1), 9.0)
                bad = d.min(axis=1) < margin
                if not bad.any():
                    break
                pts[bad] = self.rng.uniform(-self.half + 0.2, self.half - 0.2, size=(int(bad.sum()), 2))
            out[:, j] = pts
        return out

    def reset(self):
        n = self.n
        self.haz = self.rng.uniform(-self.half + 0.1, self.half - 0.1, size=(n, self.n_haz, 2))
        self.pos = self._free_points(1, self.haz, 0.15)[:, 0]
        self.goal = self._new_goal(np.ones(n, dtype=bool), self.goal if hasattr(self, "goal") else None)
        if self.cluster > 0:  # move hazards between the start and the goal (harder layouts)
            w = self.rng.uniform(0.0, self.cluster, size=(n, self.n_haz, 1))
            mid = 0.5 * (self.pos + self.goal)[:, None, :]
            self.haz = (1 - w) * self.haz + w * mid + self.rng.normal(0, 0.3, size=self.haz.shape) * w
            self.haz = np.clip(self.haz, -self.half, self.half)
            # keep start and goal outside hazards
            for arr in ("pos", "goal"):
                p = getattr(self, arr)
                d = np.linalg.norm(self.haz - p[:, None, :], axis=2)
                push = (d < self.r_haz + 0.15)[:, :, None]
                away = (self.haz - p[:, None, :]) / np.maximum(d, 1e-6)[:, :, None]
                self.haz = np.where(push, p[:, None, :] + away * (self.r_haz + 0.15), self.haz)
        self.vel = np.zeros((n, 2))
        self.heading = self.rng.uniform(-np.pi, np.pi, size=n)
        self.speed = np.zeros(n)
        self.prev_dist = np.linalg.norm(self.goal - self.pos, axis=1)
        self.t = 0
        return self._obs()

    def _new_goal(self, mask, old):
        g = self._free_points(1, self.haz, 0.1)[:, 0]
        # goal at least 1.0 away from the body
        for _ in range(30):
            far = np.linalg.norm(g - self.pos, axis=1) >= 1.0
            if far.all():
                break
            g[~far] = self._free_points(1, self.haz, 0.1)[~far, 0]
        if old is None:
            return g
        return np.where(mask[:, None], g, old)

    # -- dynamics -----------------------------------------------------------------------
    def step(self, act):
        a = np.clip(np.asarray(act, dtype=np.float64).reshape(self.n, ACT_DIM), -1.0, 1.0)
        if self.body == "point":
            self.vel = 0.85 * self.vel + 0.15 * a
            self.pos = self.pos + DT * self.vel
        else:  # car: a[0] forward force, a[1] steering (turn rate scales with speed)
            self.speed = 0.85 * self.speed + 0.15 * a[:, 0]
            self.heading = self.heading + DT * 3.0 * a[:, 1] * (0.3 + np.abs(self.speed))
            c, s = np.cos(self.heading), np.sin(self.heading)
            self.vel = self.speed[:, None] * np.stack([c, s], axis=1)
            self.pos = self.pos + DT * self.vel
        hit = np.abs(self.pos) > self.half
        self.pos = np.clip(self.pos, -self.half, self.half)
        self.vel = np.where(hit, 0.0, self.vel)
        if self.body == "car":
            self.speed = np.where(hit.any(axis=1), 0.0, self.speed)
        dist = np.linalg.norm(self.goal - self.pos, axis=1)
        reward = self.prev_dist - dist
        reached = dist < self.r_goal
        reward = reward + reached.astype(np.float64)
        if reached.any():
            self.goal = self._new_goal(reached, self.goal)
            dist = np.where(reached, np.linalg.norm(self.goal - self.pos, axis=1), dist)
        self.prev_dist = dist
        dh = np.linalg.norm(self.haz - self.pos[:, None, :], axis=2)
        cost = (dh < self.r_haz).any(axis=1).astype(np.float64)
        self.t += 1
        done = self.t >= self.horizon
        return self._obs(), reward, cost, done

    def _obs(self):
        if self.body == "car":
            c, s = np.cos(self.heading), np.sin(self.heading)
        else:
            c, s = np.ones(self.n), np.zeros(self.n)
        rot = np.stack([np.stack([c, s], 1), np.stack([-s, c], 1)], 1)  # world -> body
        v = np.einsum("nij,nj->ni", rot, self.vel)
        g = np.einsum("nij,nj->ni", rot, self.goal - self.pos)
        gd = np.linalg.norm(g, axis=1, keepdims=True)
        rel = self.haz - self.pos[:, None, :]
        d = np.linalg.norm(rel, axis=2)
        order = np.argsort(d, axis=1)[:, :OBS_K]
        idx = np.arange(self.n)[:, None]
        relk = np.einsum("nij,nkj->nki", rot, rel[idx, order])
        edge = d[idx, order] - self.r_haz
        k = min(OBS_K, self.n_haz)
        hz = np.zeros((self.n, OBS_K, 3))
        hz[:, :k, :2] = relk[:, :k] / np.maximum(d[idx, order][:, :k, None], 1e-6) * np.exp(-np.maximum(edge[:, :k, None], 0))
        hz[:, :k, 2] = np.tanh(edge[:, :k])
        if k < OBS_K:
            hz[:, k:, 2] = 1.0
        obs = np.concatenate([v, g / np.maximum(gd, 1e-6), np.tanh(gd), hz.reshape(self.n, -1)], axis=1)
        return obs.astype(np.float32)
