"""Control problems with known dynamics, batched over candidate action sequences (fixed code).

Every environment works on a batch of states ``x`` of shape (N, state_dim) and actions ``a`` of
shape (N, act_dim) in the normalized box [-1, 1]^act_dim (actions are clipped to it here, so a
planner that samples outside the box wastes nothing but gets the clipped action).
``step(x, a) -> (x_next, reward)`` is the deterministic model; the real system is the same
model plus small Gaussian process noise on the velocities.

Physical parameters, the initial state and the process noise are drawn per seed (a few
percent around the nominal values below) and are not sent to the planner: it learns about the
system only through rollouts served by the harness. At the final evaluation the draw also mixes
in a secret salt (``salt``), so that this file and a run's seed do not reproduce that run's
system.
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2.0 * np.pi


def angle_normalize(x):
    return ((x + np.pi) % TWO_PI) - np.pi


class ControlEnv:
    """Base class: a batched, deterministic model + the per-seed real system built on it."""

    name = "base"
    state_dim = 0
    act_dim = 0
    dt = 0.05
    episode_len = 200
    budget = 0  # simulated model steps the planner may request per control step
    max_horizon = 0  # longest action sequence one rollout may contain
    horizon = 0  # horizon the default planner uses (a hint; any horizon <= max_horizon works)
    noise_std = 0.0  # process noise (std) added to the velocity entries of the real system
    vel_idx: tuple[int, ...] = ()
    tag = 0  # distinguishes environments in the seed sequence

    def __init__(self, seed: int, salt: int | None = None):
        entropy = [int(seed), self.tag, 20240611] + ([] if salt is None else [int(salt)])
        ss = np.random.SeedSequence(entropy)
        rng_params, rng_init, rng_noise = (np.random.default_rng(s) for s in ss.spawn(3))
        self.params = self.sample_params(rng_params)
        self.x0 = np.asarray(self.sample_init(rng_init), dtype=np.float64)
        noise = np.zeros((self.episode_len, self.state_dim))
        eps = rng_noise.standard_normal((self.episode_len, len(self.vel_idx)))
        noise[:, list(self.vel_idx)] = self.noise_std * eps
        self.noise = noise

    # --- to implement -------------------------------------------------------------------
    def sample_params(self, rng) -> dict:
        raise NotImplementedError

    def sample_init(self, rng) -> np.ndarray:
        raise NotImplementedError

    def step(self, x: np.ndarray, a: np.ndarray, t: int = 0):
        """(N, S), (N, A) -> (N, S) next states, (N,) rewards of (x, a). ``t`` is the episode
        time whose task the reward uses (only the reacher's target depends on it): the current
        time for the real system, the time planning started for a model rollout."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------
    def observe(self, x: np.ndarray, t: int) -> np.ndarray:
        """What the planner sees at episode time t (the full state by default)."""
        return x.copy()

    def rollout(self, x0: np.ndarray, actions: np.ndarray, t0: int, full: bool = False):
        """Simulate N action sequences (N, H, A) from state x0 (S,) starting at time t0.

        Returns the (N,) sums of rewards, and with ``full`` also the (N, H) rewards and the
        (N, H + 1, S) states."""
        n, h, _ = actions.shape
        x = np.broadcast_to(x0, (n, self.state_dim)).copy()
        total = np.zeros(n)
        if full:
            rewards = np.zeros((n, h))
            states = np.zeros((n, h + 1, self.state_dim))
            states[:, 0] = x
        for k in range(h):
            x, r = self.step(x, actions[:, k], t0)
            total += r
            if full:
                rewards[:, k] = r
                states[:, k + 1] = x
        if full:
            return total, rewards, states
        return total

    def real_step(self, x: np.ndarray, a: np.ndarray, t: int):
        """One step of the real system: the model plus this seed's process noise at time t."""
        x_next, r = self.step(x[None, :], np.asarray(a, dtype=np.float64)[None, :], t)
        return x_next[0] + self.noise[t], float(r[0])

    def replay(self, actions: np.ndarray) -> float:
        """The episode return of a recorded action sequence (T, A) (the grader uses this)."""
        x = self.x0.copy()
        total = 0.0
        for t in range(self.episode_len):
            x, r = self.real_step(x, np.clip(actions[t], -1.0, 1.0), t)
            total += r
        return total


class Pendulum(ControlEnv):
    """Torque-limited pendulum swing-up: the dynamics and cost of gymnasium's Pendulum-v1 with
    the torque limit halved to 1 N m, started hanging down. State (theta, theta_dot), theta = 0
    upright. The torque is a fifth of the gravity load, so the pendulum must be pumped up over
    several swings."""

    name = "pendulum"
    state_dim = 2
    act_dim = 1
    dt = 0.05
    episode_len = 200
    budget = 1500
    max_horizon = 60
    horizon = 20
    noise_std = 0.02
    vel_idx = (1,)
    tag = 1

    def sample_params(self, rng):
        return {
            "g": 10.0,
            "m": 1.0 * rng.uniform(0.9, 1.1),
            "l": 1.0 * rng.uniform(0.9, 1.1),
            "max_torque": 1.0,
            "max_speed": 8.0,
        }

    def sample_init(self, rng):
        return [np.pi + rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2)]

    def step(self, x, a, t=0):
        p = self.params
        th, thdot = x[:, 0], x[:, 1]
        u = p["max_torque"] * np.clip(a[:, 0], -1.0, 1.0)
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        acc = 3.0 * p["g"] / (2.0 * p["l"]) * np.sin(th) + 3.0 / (p["m"] * p["l"] ** 2) * u
        new_thdot = np.clip(thdot + acc * self.dt, -p["max_speed"], p["max_speed"])
        new_th = th + new_thdot * self.dt
        return np.stack([new_th, new_thdot], axis=1), -cost


class CartPole(ControlEnv):
    """Cart-pole swing-up (the dynamics of Deisenroth & Rasmussen's PILCO cart-pole, the
    saturating cost of Chua et al.'s PETS): force on the cart, pole starts hanging down
    (theta = 0 down, pi up). State (x, x_dot, theta, theta_dot). Reward
    exp(-|tip - goal|^2 / l^2) - 0.01 a^2 with the goal the upright tip above x = 0."""

    name = "cartpole"
    state_dim = 4
    act_dim = 1
    dt = 0.05
    episode_len = 200
    budget = 2000
    max_horizon = 80
    horizon = 25
    noise_std = 0.02
    vel_idx = (1, 3)
    tag = 2
    max_speed = 10.0  # m/s, cart
    max_speed_pole = 8.0 * np.pi  # rad/s

    def sample_params(self, rng):
        return {
            "mc": 0.5 * rng.uniform(0.9, 1.1),
            "mp": 0.5 * rng.uniform(0.9, 1.1),
            "l": 0.6 * rng.uniform(0.95, 1.05),
            "b": 0.1,
            "g": 9.82,
            "max_force": 10.0,
        }

    def sample_init(self, rng):
        return rng.normal(0.0, 0.05, size=4)

    def step(self, x, a, t=0):
        p = self.params
        mc, mp, l, b, g = p["mc"], p["mp"], p["l"], p["b"], p["g"]
        a0 = np.clip(a[:, 0], -1.0, 1.0)
        f = p["max_force"] * a0
        pos, vel, th, om = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        s, c = np.sin(th), np.cos(th)
        tip_x = pos + l * s
        tip_y = l * c + l  # distance below the goal height l
        reward = np.exp(-(tip_x * tip_x + tip_y * tip_y) / (l * l)) - 0.01 * a0 * a0
        # semi-implicit Euler
        den = 4.0 * (mc + mp) - 3.0 * mp * c * c
        om2s = om * om * s
        fb = f - b * vel
        acc = (2.0 * mp * l * om2s + 3.0 * mp * g * s * c + 4.0 * fb) / den
        alpha = (-3.0 * mp * l * om2s * c - 6.0 * (mc + mp) * g * s - 6.0 * fb * c) / (l * den)
        vel = np.clip(vel + self.dt * acc, -self.max_speed, self.max_speed)
        om = np.clip(om + self.dt * alpha, -self.max_speed_pole, self.max_speed_pole)
        pos = pos + self.dt * vel
        th = th + self.dt * om
        return np.stack([pos, vel, th, om], axis=1), reward


class Reacher(ControlEnv):
    """Planar 2-link reacher (no gravity, viscous joint friction), torques on both joints.
    The target jumps to a new point of the workspace every ``segment`` steps; the observation
    is (q1, q2, dq1, dq2, target_x, target_y). Reward -|tip - target| - 0.05 |a|^2. A model
    rollout scores the whole sequence against the target shown when it starts: the planner
    cannot see a switch coming."""

    name = "reacher"
    state_dim = 4
    act_dim = 2
    dt = 0.05
    episode_len = 200
    budget = 1500
    max_horizon = 60
    horizon = 20
    noise_std = 0.05
    vel_idx = (2, 3)
    tag = 3
    segment = 25
    max_speed = 4.0 * np.pi

    def sample_params(self, rng):
        # each target is a fresh point of the reachable annulus, a quarter to a half turn
        # away from the previous one
        n_targets = self.episode_len // self.segment
        radius = rng.uniform(0.4, 0.9, size=n_targets)
        turns = rng.uniform(0.5 * np.pi, np.pi, size=n_targets) * rng.choice([-1.0, 1.0], n_targets)
        angle = rng.uniform(-np.pi, np.pi) + np.cumsum(turns)
        return {
            "m1": 1.0 * rng.uniform(0.9, 1.1),
            "m2": 1.0 * rng.uniform(0.9, 1.1),
            "l1": 0.5,
            "l2": 0.5,
            "damping": 0.5,
            "max_torque": 4.0,
            "targets": np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1),
        }

    def sample_init(self, rng):
        return [rng.uniform(-np.pi, np.pi), rng.uniform(-2.0, 2.0), 0.0, 0.0]

    def target(self, t):
        k = min(int(t) // self.segment, len(self.params["targets"]) - 1)
        return self.params["targets"][k]

    def observe(self, x, t):
        return np.concatenate([x, self.target(t)])

    def step(self, x, a, t=0):
        p = self.params
        m1, m2, l1, l2, damping = p["m1"], p["m2"], p["l1"], p["l2"], p["damping"]
        a = np.clip(a, -1.0, 1.0)
        q1, q2, dq1, dq2 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        c1, s1 = np.cos(q1), np.sin(q1)
        c12, s12 = np.cos(q1 + q2), np.sin(q1 + q2)
        tg = self.target(t)
        dx = l1 * c1 + l2 * c12 - tg[0]
        dy = l1 * s1 + l2 * s12 - tg[1]
        reward = -np.sqrt(dx * dx + dy * dy) - 0.05 * np.sum(a * a, axis=1)
        # uniform rods: centre of mass at half length, inertia m l^2 / 12 about the centre
        lc1, lc2 = 0.5 * l1, 0.5 * l2
        i1, i2 = m1 * l1**2 / 12.0, m2 * l2**2 / 12.0
        c2, s2 = np.cos(q2), np.sin(q2)
        m12 = (m2 * lc2**2 + i2) + (m2 * l1 * lc2) * c2
        m11 = (m1 * lc1**2 + i1 + m2 * (l1**2 + lc2**2) + i2) + (2.0 * m2 * l1 * lc2) * c2
        m22 = m2 * lc2**2 + i2
        hh = (m2 * l1 * lc2) * s2
        tau = p["max_torque"] * a
        rhs1 = tau[:, 0] + hh * (2.0 * dq1 + dq2) * dq2 - damping * dq1
        rhs2 = tau[:, 1] - hh * dq1 * dq1 - damping * dq2
        det = m11 * m22 - m12 * m12
        # semi-implicit Euler
        lim = self.max_speed
        dq1 = np.clip(dq1 + self.dt * (m22 * rhs1 - m12 * rhs2) / det, -lim, lim)
        dq2 = np.clip(dq2 + self.dt * (m11 * rhs2 - m12 * rhs1) / det, -lim, lim)
        x_next = np.stack([q1 + self.dt * dq1, q2 + self.dt * dq2, dq1, dq2], axis=1)
        return x_next, reward


ENVS = {cls.name: cls for cls in (Pendulum, CartPole, Reacher)}
