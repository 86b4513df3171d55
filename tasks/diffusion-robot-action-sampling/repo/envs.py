"""Two small control problems with multimodal expert demonstrations (vectorised numpy; fixed file).

reach  A point robot (velocity control, |a_i| <= 1, 0.08 per step at |a| = 1) must reach a goal
       2-3 units away; a disc obstacle sits on the straight line between start and goal. The expert
       passes it on the left or on the right (a fair coin per episode), steering along the tangent of
       the inflated obstacle, so the action distribution at the start is bimodal and the average of
       the two modes drives straight into the obstacle. Success: within 0.15 of the goal before
       step 64, never inside the obstacle. Mode: the side on which the robot passes the obstacle.
pendulum  Torque-limited pendulum swing-up (gravity 10, |u| <= 2.5: too weak to lift it directly).
       The expert pumps energy and catches the pendulum at the top with a linear state feedback;
       from rest at the bottom it pushes clockwise or counter-clockwise (a fair coin per episode),
       so the first action chunk is bimodal (all +1 or all -1) and their average (0) leaves the
       pendulum hanging. Success: the swing-up captures the pendulum (|angle - pi| < 0.3 with
       |angular velocity| < 1 at some step of 200), where the expert's stabiliser takes over.
       Mode: the direction of the first swing.

Actions are normalised to [-1, 1]; a policy outputs chunks of H actions and the harness executes
the first E of them before asking for the next chunk (receding horizon, as in Diffusion Policy).
"""
from __future__ import annotations

import numpy as np


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


class Reach:
    name = "reach"
    act_dim = 2
    horizon = 8        # H: actions per chunk
    execute = 4        # E: actions executed per chunk
    max_steps = 64
    obs_dim = 5
    step_size = 0.08   # distance per step at |a| = 1
    goal_tol = 0.15
    margin = 0.2       # the expert's clearance around the obstacle

    @staticmethod
    def instances(rng, n, r_lo=0.3, r_hi=0.5, d_lo=2.0, d_hi=3.0):
        """Start near the origin, goal 2-3 units to the right (the task's frame), the obstacle on
        the straight line between them."""
        start = rng.uniform(-0.1, 0.1, (n, 2))
        d = rng.uniform(d_lo, d_hi, n)
        goal = np.stack([d, rng.uniform(-0.3, 0.3, n)], 1)
        f = rng.uniform(0.4, 0.6, n)
        center = start + f[:, None] * (goal - start)
        radius = rng.uniform(r_lo, r_hi, n)
        return dict(start=start, goal=goal, center=center, radius=radius)

    @staticmethod
    def init_state(inst):
        return inst["start"].copy()

    @classmethod
    def obs(cls, state, inst):
        return np.concatenate([inst["goal"] - state, inst["center"] - state, inst["radius"][:, None]], 1)

    @classmethod
    def step(cls, state, a):
        a = np.clip(a, -1.0, 1.0)
        return state + cls.step_size * a

    @classmethod
    def expert(cls, state, inst, side):
        """Expert velocity command for sides in {-1, +1} (+1 = counter-clockwise of the line)."""
        p, g, c = state, inst["goal"], inst["center"]
        R = inst["radius"] + cls.margin
        to_g = g - p
        dist_g = np.linalg.norm(to_g, axis=1)
        to_c = c - p
        dc = np.linalg.norm(to_c, axis=1)
        # is the straight segment p -> g blocked by the inflated disc?
        u = _unit(to_g)
        proj = np.clip((to_c * u).sum(1), 0.0, dist_g)
        closest = p + proj[:, None] * u
        blocked = np.linalg.norm(closest - c, axis=1) < R
        # tangent direction of the inflated disc on the expert's side
        ang = np.arcsin(np.clip(R / np.maximum(dc, 1e-9), -1.0, 1.0))
        base = np.arctan2(to_c[:, 1], to_c[:, 0])
        # side +1 passes with the obstacle on the robot's right: rotate the direction to c by +ang
        th = base + side * ang
        tang = np.stack([np.cos(th), np.sin(th)], 1)
        inside = dc < R
        # inside the inflated disc: move outward and round it
        nrm = -_unit(to_c)
        perp = np.stack([-nrm[:, 1], nrm[:, 0]], 1) * side[:, None] * -1.0
        around = _unit(nrm + perp)
        direction = np.where(blocked[:, None], np.where(inside[:, None], around, tang), u)
        speed = np.clip(dist_g / (2 * cls.step_size), 0.0, 1.0) * 0.9
        v = direction * speed[:, None]
        # per-axis limit is 1; keep the norm <= 0.9 so the command is never clipped
        return v

    @classmethod
    def outcome(cls, states, inst):
        """states: (n, T+1, 2) visited positions. -> success (bool n), mode (+1/-1/0 n)."""
        g, c, r = inst["goal"], inst["center"], inst["radius"]
        dgoal = np.linalg.norm(states - g[:, None], axis=2)
        dobs = np.linalg.norm(states - c[:, None], axis=2)
        T1 = states.shape[1]
        big = T1 + 1
        t_goal = np.where((dgoal < cls.goal_tol).any(1), (dgoal < cls.goal_tol).argmax(1), big)
        t_hit = np.where((dobs < r[:, None]).any(1), (dobs < r[:, None]).argmax(1), big)
        success = (t_goal < big) & (t_hit > t_goal)
        # side: sign of the cross product line x (p - start) where p passes the obstacle's abscissa
        s = inst["start"]
        line = g - s
        L = np.linalg.norm(line, axis=1)
        u = line / L[:, None]
        rel = states - s[:, None]
        along = (rel * u[:, None]).sum(2)
        cross = u[:, None, 0] * rel[:, :, 1] - u[:, None, 1] * rel[:, :, 0]
        c_along = ((c - s) * u).sum(1)
        past = along >= c_along[:, None]
        k = np.where(past.any(1), past.argmax(1), 0)
        side = np.sign(cross[np.arange(len(k)), k])
        mode = np.where(past.any(1), side, 0.0)
        return success, mode


class Pendulum:
    name = "pendulum"
    act_dim = 1
    horizon = 16
    execute = 8
    max_steps = 200
    obs_dim = 3
    dt = 0.05
    g = 10.0
    damping = 0.1
    u_max = 2.5
    tol = 0.3        # success: upright within tol (rad) ...
    capture_speed = 1.0  # ... at an angular velocity below capture_speed (rad/s)
    k_lqr = (16.0, 5.0)

    @staticmethod
    def instances(rng, n, th_max=0.05, om_max=0.05):
        return dict(theta0=rng.uniform(-th_max, th_max, n), omega0=rng.uniform(-om_max, om_max, n))

    @staticmethod
    def init_state(inst):
        return np.stack([inst["theta0"], inst["omega0"]], 1)

    @staticmethod
    def obs(state, inst):
        th, om = state[:, 0], state[:, 1]
        return np.stack([np.cos(th), np.sin(th), om / 8.0], 1)

    @classmethod
    def step(cls, state, a):
        u = np.clip(a[:, 0], -1.0, 1.0) * cls.u_max
        th, om = state[:, 0], state[:, 1]
        # semi-implicit Euler, two substeps
        h = cls.dt / 2
        for _ in range(2):
            om = om + h * (-cls.g * np.sin(th) - cls.damping * om + u)
            th = th + h * om
        return np.stack([th, om], 1)

    @classmethod
    def expert(cls, state, inst, side):
        th, om = state[:, 0], state[:, 1]
        phi = _wrap(th - np.pi)
        energy = 0.5 * om ** 2 - cls.g * np.cos(th)
        e_top = cls.g
        pump = np.sign(om) * np.sign(e_top - energy) * cls.u_max * np.clip(np.abs(e_top - energy), 0, 1)
        at_rest = (np.abs(om) < 0.5) & (np.cos(th) > 0.9)
        pump = np.where(at_rest, side * cls.u_max, pump)
        lqr = -(cls.k_lqr[0] * phi + cls.k_lqr[1] * om)
        near_top = (np.abs(phi) < 0.6) & (np.abs(om) < 3.0)
        u = np.where(near_top, lqr, pump)
        return (np.clip(u, -cls.u_max, cls.u_max) / cls.u_max)[:, None]

    @classmethod
    def outcome(cls, states, inst):
        """Success: the swing-up captures the pendulum, i.e. it is brought into the upright
        region |angle - pi| < tol with |angular velocity| < capture_speed at some step (from there
        a linear stabiliser holds it; Astrom & Furuta 2000). Mode: the first swing's direction."""
        th, om = states[:, :, 0], states[:, :, 1]
        captured = (np.abs(_wrap(th - np.pi)) < cls.tol) & (np.abs(om) < cls.capture_speed)
        success = captured.any(1)
        big = np.abs(th) > 0.15
        k = np.where(big.any(1), big.argmax(1), 0)
        mode = np.where(big.any(1), np.sign(th[np.arange(len(k)), k]), 0.0)
        return success, mode


ENVS = {"reach": Reach, "pendulum": Pendulum}


def expert_chunks(env, state, inst, side, horizon=None):
    """The expert's next `horizon` actions from `state` (it keeps its side): (n, H, act_dim)."""
    H = horizon or env.horizon
    out = []
    s = state.copy()
    for _ in range(H):
        a = env.expert(s, inst, side)
        out.append(a)
        s = env.step(s, a)
    return np.stack(out, 1)


def rollout_expert(env, inst, side, rng=None, noise=0.0):
    """Closed-loop expert rollout (optionally with action noise): states (n, T+1, .), actions."""
    s = env.init_state(inst)
    states, acts = [s], []
    for _ in range(env.max_steps):
        a = env.expert(s, inst, side)
        if noise > 0 and rng is not None:
            a = np.clip(a + noise * rng.standard_normal(a.shape), -1, 1)
        acts.append(a)
        s = env.step(s, a)
        states.append(s)
    return np.stack(states, 1), np.stack(acts, 1)
