"""The fixed MPC harness: the real system and the model live here, the planner runs elsewhere.

The parent process owns the environment (its per-run parameters, the real state, the process
noise), serves model rollouts and counts every simulated step. The planner (``planner.py``)
runs in the task kit's least-privileged child: it reads planner.py and nothing else of this
folder (not envs.py), writes only its scratch folder, and sees neither the seed nor this
process. Frames (raw bytes, the first byte their kind; the parent never unpickles):

  parent -> child   b"P" + uint32 t + float64 obs        plan the action for episode time t
                    b"O" + uint32 used, uint32 S + float64 returns (N)
                         [+ rewards (N*H) + states (N*(H+1)*S) with full]   a rollout's answer
                    b"B" + text                          a request refused (not simulated)
                    b"S"                                 the episode is over
  child -> parent   b"R" + uint32 N, uint32 H, uint8 full + float64 actions (N*H*A)
                    b"A" + float64 action (A)            the action for this control step
                    b"D"                                 done (after b"S")

Per control step the planner may simulate at most ``budget`` model steps (a rollout of N
sequences of length H costs N*H, H <= ``max_horizon``); a request that would exceed it is
refused and not simulated. Rollouts always start from the current real state, at the current
episode time. The real system is stepped with the action the planner returns (clipped to
[-1, 1]). At the final evaluation the system's parameters, initial state and noise, and the
planner's seed, mix in a secret salt (the secrets channel): a copy of envs.py and a guessed
seed reproduce neither. After the child has exited the parent writes ``result.json`` (the
actions, the return, the budget counters, the planner's CPU time), which the grader replays.
"""

from __future__ import annotations

import os
import struct
import sys
import time

import numpy as np

from taskkit import Child, RunFailure, out_dir_from_env, read_secret, write_artifacts

HARNESS_VERSION = 2
_REQ = struct.Struct("<IIB")  # N, H, full
_ANS = struct.Struct("<II")  # used, state_dim
_T = struct.Struct("<I")


class BudgetExceeded(RuntimeError):
    """A rollout request would simulate more model steps than this control step has left."""


# ----------------------------------------------------------------------------------------
# child side (runs after the kit dropped this process's privileges)
# ----------------------------------------------------------------------------------------
class Spec:
    """What the planner knows about the problem (no physical parameters, no seed)."""

    def __init__(self, d: dict):
        self.obs_dim = int(d["obs_dim"])  # length of the observation vector
        self.act_dim = int(d["act_dim"])  # actions live in [-1, 1]^act_dim
        self.budget = int(d["budget"])  # model steps per control step (N * H summed)
        self.max_horizon = int(d["max_horizon"])  # longest sequence one rollout may hold
        self.horizon = int(d["horizon"])  # a sensible planning horizon for this problem
        self.episode_len = int(d["episode_len"])  # control steps in the episode
        self.dt = float(d["dt"])  # seconds per control step

    def __repr__(self):
        return f"Spec({vars(self)})"


class Model:
    """The planner's handle on the dynamics model (served by the parent process).

    ``rollout(actions)`` simulates N action sequences of shape (N, H, A) from the current
    state and returns their (N,) returns (sums of rewards, undiscounted); with ``full=True``
    it returns ``(returns, rewards (N, H), states (N, H + 1, S))``. Actions are clipped to
    [-1, 1] by the model. Each call costs N * H steps of this control step's ``budget``;
    ``remaining`` says what is left. A request over budget raises ``BudgetExceeded`` and is
    not simulated (the parent counts and refuses; this class only says so early)."""

    def __init__(self, conn, spec: Spec):
        self._conn = conn
        self.budget = spec.budget
        self.max_horizon = spec.max_horizon
        self._act_dim = spec.act_dim
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int:
        return self.budget - self._used

    def rollout(self, actions, full: bool = False):
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 3 or a.shape[2] != self._act_dim or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(
                f"actions must have shape (N, H, {self._act_dim}) with N, H >= 1, got {a.shape}"
            )
        n, h = a.shape[0], a.shape[1]
        if h > self.max_horizon:
            raise ValueError(f"horizon {h} exceeds max_horizon {self.max_horizon}")
        if not np.all(np.isfinite(a)):
            raise ValueError("actions contain NaN or inf")
        if n * h > self.remaining:
            raise BudgetExceeded(
                f"rollout of {n} x {h} = {n * h} steps requested, {self.remaining} of "
                f"{self.budget} left in this control step"
            )
        body = np.ascontiguousarray(a, dtype="<f8").tobytes()
        self._conn.send_bytes(b"R" + _REQ.pack(n, h, bool(full)) + body)
        reply = self._conn.recv_bytes()
        if reply[:1] == b"B":
            raise BudgetExceeded(reply[1:].decode())
        self._used, s = _ANS.unpack_from(reply, 1)
        values = np.frombuffer(reply, dtype="<f8", offset=1 + _ANS.size).copy()
        if not full:
            return values
        return values[:n], values[n : n + n * h].reshape(n, h), values[n + n * h :].reshape(n, h + 1, s)

    def _new_step(self):
        self._used = 0


def planner_main(conn, spec_dict: dict, planner_seed: int) -> None:
    """The child: runs the editable planner, one ``plan`` per b"P" frame, until b"S"."""
    import planner as user  # the agent's code: imported here, in this process only

    spec = Spec(spec_dict)
    model = Model(conn, spec)
    agent = user.Planner(spec, np.random.default_rng(planner_seed))
    while True:
        msg = conn.recv_bytes()
        if msg[:1] == b"S":
            break
        (t,) = _T.unpack_from(msg, 1)
        obs = np.frombuffer(msg, dtype="<f8", offset=1 + _T.size).copy()
        model._new_step()
        action = np.asarray(agent.plan(obs, t, model), dtype=np.float64).reshape(-1)
        conn.send_bytes(b"A" + np.ascontiguousarray(action, dtype="<f8").tobytes())
    conn.send_bytes(b"D")


# ----------------------------------------------------------------------------------------
# parent side
# ----------------------------------------------------------------------------------------
def _control_step(child: Child, env, x: np.ndarray, t: int, record: dict) -> np.ndarray:
    """Serve one control step's rollout requests; return the planner's (clipped) action."""
    a_dim = env.act_dim
    child.send(b"P", _T.pack(t) + env.observe(x, t).astype("<f8").tobytes())
    used = n_req = 0
    while True:
        # no valid request is larger than the whole budget's actions
        msg = child.recv(maxlength=1 + _REQ.size + 8 * env.budget * a_dim)
        kind = msg[:1]
        if kind == b"A":
            action = np.frombuffer(msg, dtype="<f8", offset=1)
            if action.shape != (a_dim,):
                raise RunFailure(
                    f"planner returned an action of {len(msg) - 1} bytes at step {t}, "
                    f"expected {a_dim} float64 values"
                )
            if not np.all(np.isfinite(action)):
                raise RunFailure(f"planner returned a non-finite action at step {t}")
            break
        if kind != b"R" or len(msg) < 1 + _REQ.size:
            raise RunFailure(f"protocol error: the planner sent a {kind!r} frame at step {t}")
        n, h, full = _REQ.unpack_from(msg, 1)
        payload = np.frombuffer(msg, dtype="<f8", offset=1 + _REQ.size)
        refusal = None
        if n < 1 or h < 1 or payload.size != n * h * a_dim:
            refusal = f"malformed rollout request ({n} x {h} x {a_dim}, {payload.size} values)"
        elif h > env.max_horizon:
            refusal = f"horizon {h} exceeds max_horizon {env.max_horizon}"
        elif used + n * h > env.budget:
            refusal = (
                f"rollout of {n} x {h} = {n * h} steps refused: {env.budget - used} of "
                f"{env.budget} model steps left in control step {t} (budget exceeded)"
            )
        elif not np.all(np.isfinite(payload)):
            refusal = "actions contain NaN or inf"
        if refusal:
            record["refused"] += 1
            child.send(b"B", refusal.encode())
            continue
        used += n * h
        n_req += 1
        record["max_horizon_used"] = max(record["max_horizon_used"], h)
        acts = np.clip(payload.reshape(n, h, a_dim), -1.0, 1.0)
        result = env.rollout(x, acts, t, bool(full))
        parts = result if full else (result,)
        body = b"".join(np.ascontiguousarray(p, dtype="<f8").tobytes() for p in parts)
        child.send(b"O", _ANS.pack(used, env.state_dim) + body)
    record["steps_per_control"].append(used)
    record["requests_per_control"].append(n_req)
    record["total_model_steps"] += used
    return np.clip(action, -1.0, 1.0)


def run_episode(env_cls, seed: int, out_dir, label: str | None = None) -> int:
    """Run one MPC episode of ``env_cls`` with the planner in the kit's child; write the
    artifact; return the process exit code: 1 for a failed episode without an output folder
    (a run by hand), else 0 (the grader fails the setting with the recorded error)."""
    salt = read_secret("salt.txt")  # the final evaluation's runs only
    salt = int(salt) if salt else None
    env = env_cls(seed, salt)
    label = label or env.name
    spec = {
        "obs_dim": int(env.observe(env.x0, 0).shape[0]),
        "act_dim": env.act_dim,
        "budget": env.budget,
        "max_horizon": env.max_horizon,
        "horizon": env.horizon,
        "episode_len": env.episode_len,
        "dt": env.dt,
    }
    entropy = [int(seed), 7919] + ([] if salt is None else [salt])
    planner_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    record = {
        "harness_version": HARNESS_VERSION,
        "env": env.name,
        "setting": label,
        "seed": int(seed),
        "instance": "public" if salt is None else "final",
        "status": "failed",
        "error": None,
        "isolation": None,
        "budget": env.budget,
        "max_horizon": env.max_horizon,
        "episode_len": env.episode_len,
        "actions": [],
        "rewards": [],
        "return": None,
        "steps_per_control": [],
        "requests_per_control": [],
        "max_horizon_used": 0,
        "refused": 0,
        "total_model_steps": 0,
        "planner_cpu_s": None,
    }
    t_start = time.time()
    x, total = env.x0.copy(), 0.0
    try:
        # the planner's process reads planner.py and nothing else of this folder: not envs.py
        with Child(
            "harness:planner_main", spec, planner_seed, may_read=["planner.py"], name="planner"
        ) as child:
            record["isolation"] = child.isolation
            for t in range(env.episode_len):
                action = _control_step(child, env, x, t, record)
                x, r = env.real_step(x, action, t)
                total += r
                record["actions"].append([float(v) for v in action])
                record["rewards"].append(r)
                if not np.all(np.isfinite(x)):
                    raise RunFailure(f"the real state became non-finite at step {t}")
            child.send(b"S")
            child.expect(b"D", size=0)
            record["planner_cpu_s"] = child.cpu_ns() / 1e9  # read from outside the planner
        record["status"], record["return"] = "ok", total
    except RunFailure as e:
        record["error"] = str(e)
    if out_dir is not None:
        write_artifacts(out_dir, record)
    if record["status"] == "ok":
        steps = record["steps_per_control"]
        print(
            f"[{label}] seed {seed}: return {total:.3f} over {env.episode_len} steps; "
            f"model steps per control step: mean {np.mean(steps):.0f}, max {max(steps)} "
            f"(budget {env.budget}); refused requests {record['refused']}; planner CPU "
            f"{record['planner_cpu_s']:.1f} s; {time.time() - t_start:.1f} s"
        )
        return 0
    print(f"[{label}] seed {seed}: FAILED: {record['error']}", file=sys.stderr)
    return 0 if out_dir is not None else 1


def main(env_cls, label: str) -> None:
    seed = int(os.environ.pop("MLSBENCH_SEED", "0"))  # the planner never learns the seed
    out_dir = out_dir_from_env() if "MLSBENCH_OUT" in os.environ else None
    sys.exit(run_episode(env_cls, seed, out_dir, label))
