"""Fixed harness: PPO (ppo.py), its rollouts, the environments, the step counter and the
evaluation all run in this (parent) process; only the editable ConstraintHandler runs in the
task kit's least-privileged child (handler_child.py: it reads constraint.py and nothing else
of this folder). Each handler call, update(ep_costs, ep_returns) and combine(adv_r, adv_c),
is one request frame of float64 bytes and one answer frame (protocol in handler_child.py);
the parent never unpickles what the child sent, and agent code never runs where PPO's
settings, functions or the environment live, so it cannot change them.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import env as envmod
import net
import ppo
from taskkit import Child, RunFailure


class _RemoteHandler:
    """The ConstraintHandler interface PPO calls, answered by the handler's child."""

    def __init__(self, child: Child, n_envs: int, n_steps: int, deadline: float, limit_s: float):
        self.child, self.n, self.N = child, n_envs, n_steps
        self.deadline, self.limit_s = deadline, limit_s
        self.expect(b"K", 0)  # built (a constructor that raised is reported here)

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RunFailure(f"training did not finish within {self.limit_s:.0f} s")
        return left

    def expect(self, kind: bytes, size: int) -> bytes:
        return self.child.expect(kind, size=size, timeout_s=self.left())

    def update(self, ep_costs, ep_returns):
        self.child.send(b"U", _f64(ep_costs, self.n) + _f64(ep_returns, self.n))
        self.expect(b"K", 0)

    def combine(self, adv_r, adv_c):
        self.child.send(b"C", _f64(adv_r, self.N) + _f64(adv_c, self.N))
        msg = self.child.recv(maxlength=1 + 8 * self.N, timeout_s=self.left())
        if msg[:1] != b"A" or len(msg) != 1 + 8 * self.N:
            raise RunFailure(
                f"combine() must return {self.N} finite advantages, got "
                + (f"{(len(msg) - 1) / 8:g} values" if msg[:1] == b"A" else f"frame {msg[:1]!r}")
            )
        adv = np.frombuffer(msg, dtype="<f8", offset=1).astype(np.float64)
        if not np.all(np.isfinite(adv)):
            raise RunFailure(f"combine() must return {self.N} finite advantages (got NaN or inf)")
        return adv


def _f64(x, n: int) -> bytes:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(n), dtype="<f8").tobytes()


class _Rollouts:
    """The environment as PPO sees it: exactly `updates` resets of `horizon` steps each."""

    def __init__(self, E, updates: int, horizon: int):
        self.E, self.updates, self.horizon = E, updates, horizon
        self.resets = self.steps = self.refused = 0
        self.in_episode = False
        self.ep_r, self.ep_c = np.zeros(E.n), np.zeros(E.n)
        self.curve_ret, self.curve_cost = [], []

    def refuse(self, why: str):
        self.refused += 1
        raise RunFailure(why)

    def reset(self):
        if self.resets >= self.updates:
            self.refuse(
                f"environment step budget exhausted: {self.updates} rollouts of {self.horizon} "
                f"steps x {self.E.n} envs allowed"
            )
        if self.in_episode:
            self.refuse("reset before the episode ended (environment step budget)")
        self.resets += 1
        self.in_episode = True
        self.ep_r[:], self.ep_c[:] = 0.0, 0.0
        return self.E.reset()

    def step(self, act):
        if not self.in_episode:
            self.refuse("step outside an episode (environment step budget)")
        obs, r, c, done = self.E.step(act)
        self.steps += self.E.n
        self.ep_r += r
        self.ep_c += c
        if done:
            self.in_episode = False
            self.curve_ret.append(float(self.ep_r.mean()))
            self.curve_cost.append(float(self.ep_c.mean()))
        return obs, r.astype(np.float64), c.astype(np.float64)


def serve(layout, cfg, seed, child_timeout_s=280.0):
    """Train PPO here with the handler in the kit's child; return (params|None, record)."""
    n, horizon, updates = int(cfg["n_envs"]), int(cfg["horizon"]), int(cfg["updates"])
    limit = float(cfg["cost_limit"])
    env = _Rollouts(envmod.NavEnv(dict(layout, horizon=horizon), n, seed=1_000_003 * (seed + 1)),
                    updates, horizon)
    torch.set_num_threads(1)
    t0 = time.time()
    params, error, violation, isolation, handler_cpu_s = None, None, None, None, None
    try:
        # the handler's process reads constraint.py, nothing else of this folder
        with Child("handler_child:child_main", limit, updates, n, n * horizon, seed,
                   may_read=["constraint.py"], name="constraint handler",
                   timeout_s=child_timeout_s) as child:
            isolation = child.isolation
            handler = _RemoteHandler(child, n, n * horizon, time.monotonic() + child_timeout_s,
                                     child_timeout_s)
            actor = ppo.train(env.step, env.reset, handler, envmod.OBS_DIM, envmod.ACT_DIM, n,
                              horizon, updates, seed)
            child.send(b"D")
            handler_cpu_s = round(child.cpu_ns() / 1e9, 3)
        params = net.flat_params(actor)
    except RunFailure as e:
        error = str(e)
        if error.startswith("policy violation: "):
            violation = error.removeprefix("policy violation: ")
        elif error.startswith("Traceback"):  # the handler raised (the kit's X frame)
            error = "the constraint handler failed:\n" + error
    record = {
        "n_envs": n, "horizon": horizon, "updates": updates, "cost_limit": limit,
        "env_steps": env.steps, "resets": env.resets, "refused": env.refused,
        "budget_steps": updates * horizon * n,
        "train_curve_return": env.curve_ret, "train_curve_cost": env.curve_cost,
        "violation": violation, "isolation": isolation, "handler_cpu_s": handler_cpu_s,
        "train_wall_s": round(time.time() - t0, 3),
    }
    if params is not None and (env.steps != updates * horizon * n or env.resets != updates):
        error = f"PPO returned after {env.steps} of {updates * horizon * n} env steps"
    if violation is not None:
        error = "policy violation: " + violation
    record["error"] = error
    return params, record


def evaluate(layout, cfg, params, seed):
    """Deterministic (mean-action) episodes of the returned policy on fresh layouts."""
    torch.set_num_threads(1)
    layout = dict(layout, horizon=int(cfg["horizon"]))
    actor = net.Actor(envmod.OBS_DIM, envmod.ACT_DIM)
    net.load_flat(actor, params)
    E = envmod.NavEnv(layout, int(cfg["eval_episodes"]), seed=7_777_777 + 31 * seed)
    obs = E.reset()
    R = np.zeros(E.n)
    C = np.zeros(E.n)
    with torch.no_grad():
        for _ in range(E.horizon):
            a = actor.mu(torch.from_numpy(obs)).numpy()
            if not np.all(np.isfinite(a)):
                raise ValueError("the policy produced non-finite actions")
            obs, r, c, _ = E.step(a)
            R += r
            C += c
    return R, C
