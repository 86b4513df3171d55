"""The fixed MPC harness: the real system and the model live here, the planner runs elsewhere.

The parent process owns the environment (its per-seed parameters, the real state, the process
noise), serves model rollouts and counts every simulated step. The planner (``planner.py``)
runs in a child process started with the ``spawn`` context and talks to the parent only over a
pipe:

  parent -> child   ("plan", t, obs)           plan the action for episode time t
                    ("ok", used, result)        the answer to a rollout request
                    ("refused", message)        a request over budget or malformed
                    ("stop",)                   the episode is over
  child -> parent   raw bytes: a JSON header + float64 payload (never unpickled here)
                    {"op": "rollout", "shape": [N, H, A], "full": bool}  + N*H*A floats
                    {"op": "act"}                                         + A floats
                    {"op": "error", "message": str}

Per control step the planner may simulate at most ``budget`` model steps (a rollout of N
sequences of length H costs N*H, H <= ``max_horizon``); a request that would exceed it is
refused and not simulated. Rollouts always start from the current real state, at the current
episode time. The real system is stepped with the action the planner returns (clipped to
[-1, 1]). When the episode ends the parent writes ``result.json`` into MLSBENCH_OUT (after
the child has exited): the actions, the return and the budget counters, which the grader
checks and replays.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
import traceback

import numpy as np

HARNESS_VERSION = 1
_HEADER = struct.Struct("<I")
_POLL_S = 1.0


class BudgetExceeded(RuntimeError):
    """A rollout request would simulate more model steps than this control step has left."""


# ----------------------------------------------------------------------------------------
# child side
# ----------------------------------------------------------------------------------------
def _send(conn, header: dict, payload: np.ndarray | None = None) -> None:
    head = json.dumps(header).encode()
    body = b"" if payload is None else np.ascontiguousarray(payload, dtype="<f8").tobytes()
    conn.send_bytes(_HEADER.pack(len(head)) + head + body)


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
    not simulated."""

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
        _send(self._conn, {"op": "rollout", "shape": [n, h, self._act_dim], "full": bool(full)}, a)
        reply = self._conn.recv()
        if reply[0] == "refused":
            raise BudgetExceeded(reply[1])
        self._used = reply[1]
        return reply[2]

    def _new_step(self):
        self._used = 0


def planner_main(conn, spec_dict: dict, planner_seed: int) -> None:
    """Entry point of the child process: runs the editable planner."""
    try:
        import planner as user

        spec = Spec(spec_dict)
        model = Model(conn, spec)
        rng = np.random.default_rng(planner_seed)
        agent = user.Planner(spec, rng)
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                break
            _, t, obs = msg
            model._new_step()
            action = np.asarray(agent.plan(obs, t, model), dtype=np.float64).reshape(-1)
            _send(conn, {"op": "act"}, action)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    except BaseException:
        try:
            _send(conn, {"op": "error", "message": traceback.format_exc()[-4000:]})
        except Exception:
            pass
    finally:
        conn.close()


# ----------------------------------------------------------------------------------------
# parent side
# ----------------------------------------------------------------------------------------
class PlannerFailure(RuntimeError):
    pass


def _recv(conn, proc, maxlength: int):
    while not conn.poll(_POLL_S):
        if not proc.is_alive():
            raise PlannerFailure(f"planner process exited unexpectedly (exit code {proc.exitcode})")
    try:
        raw = conn.recv_bytes(maxlength)
    except EOFError:
        raise PlannerFailure("planner process closed the pipe") from None
    except OSError as e:
        raise PlannerFailure(f"planner sent a message over {maxlength} bytes ({e})") from None
    if len(raw) < _HEADER.size:
        raise PlannerFailure("planner sent a malformed message")
    (n_head,) = _HEADER.unpack_from(raw)
    try:
        header = json.loads(raw[_HEADER.size : _HEADER.size + n_head].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PlannerFailure("planner sent a malformed message header") from None
    if not isinstance(header, dict):
        raise PlannerFailure("planner sent a malformed message header")
    body = raw[_HEADER.size + n_head :]
    if len(body) % 8:
        raise PlannerFailure("planner sent a malformed payload")
    return header, np.frombuffer(body, dtype="<f8")


def run_episode(env_cls, seed: int, out_dir: str | None, label: str | None = None) -> int:
    """Run one MPC episode of ``env_cls`` with the planner in a child process; write the
    artifact; return the process exit code (0 ok, 1 failed)."""
    import multiprocessing as mp

    env = env_cls(seed)
    label = label or env.name
    obs0 = env.observe(env.x0, 0)
    spec = {
        "obs_dim": int(obs0.shape[0]),
        "act_dim": env.act_dim,
        "budget": env.budget,
        "max_horizon": env.max_horizon,
        "horizon": env.horizon,
        "episode_len": env.episode_len,
        "dt": env.dt,
    }
    planner_seed = int(np.random.SeedSequence([int(seed), 7919]).generate_state(1)[0])
    maxlength = 4096 + 8 * env.budget * env.act_dim

    record = {
        "harness_version": HARNESS_VERSION,
        "env": env.name,
        "setting": label,
        "seed": int(seed),
        "status": "failed",
        "error": None,
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
    }

    # The child gets neither the output folder nor the seed.
    for var in ("MLSBENCH_OUT", "MLSBENCH_SEED"):
        os.environ.pop(var, None)
    ctx = mp.get_context("spawn")
    conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=planner_main, args=(child_conn, spec, planner_seed), daemon=True)
    t_start = time.time()
    proc.start()
    child_conn.close()

    x = env.x0.copy()
    total = 0.0
    try:
        for t in range(env.episode_len):
            conn.send(("plan", t, env.observe(x, t)))
            used, n_req = 0, 0
            while True:
                header, payload = _recv(conn, proc, maxlength)
                op = header.get("op")
                if op == "error":
                    msg = str(header.get("message", ""))[-4000:]
                    raise PlannerFailure(f"planner raised an exception at step {t}:\n{msg}")
                if op == "act":
                    if payload.shape != (env.act_dim,):
                        raise PlannerFailure(
                            f"planner returned an action of size {payload.size} at step {t}, "
                            f"expected {env.act_dim}"
                        )
                    if not np.all(np.isfinite(payload)):
                        raise PlannerFailure(f"planner returned a non-finite action at step {t}")
                    action = np.clip(payload, -1.0, 1.0)
                    break
                if op != "rollout":
                    raise PlannerFailure(f"planner sent an unknown request {op!r}")
                shape = header.get("shape")
                ok = (
                    isinstance(shape, list)
                    and len(shape) == 3
                    and all(isinstance(v, int) and v >= 1 for v in shape)
                    and shape[2] == env.act_dim
                    and shape[0] * shape[1] * shape[2] == payload.size
                )
                if not ok:
                    record["refused"] += 1
                    conn.send(("refused", f"malformed rollout request (shape {shape})"))
                    continue
                n, h = shape[0], shape[1]
                if h > env.max_horizon:
                    record["refused"] += 1
                    conn.send(("refused", f"horizon {h} exceeds max_horizon {env.max_horizon}"))
                    continue
                if used + n * h > env.budget:
                    record["refused"] += 1
                    conn.send(
                        (
                            "refused",
                            f"rollout of {n} x {h} = {n * h} steps refused: {env.budget - used} "
                            f"of {env.budget} left in control step {t}",
                        )
                    )
                    continue
                acts = payload.reshape(n, h, env.act_dim)
                if not np.all(np.isfinite(acts)):
                    record["refused"] += 1
                    conn.send(("refused", "actions contain NaN or inf"))
                    continue
                used += n * h
                n_req += 1
                record["max_horizon_used"] = max(record["max_horizon_used"], h)
                result = env.rollout(x, np.clip(acts, -1.0, 1.0), t, bool(header.get("full")))
                conn.send(("ok", used, result))
            record["steps_per_control"].append(used)
            record["requests_per_control"].append(n_req)
            record["total_model_steps"] += used
            x, r = env.real_step(x, action, t)
            total += r
            record["actions"].append([float(v) for v in action])
            record["rewards"].append(r)
            if not np.all(np.isfinite(x)):
                raise PlannerFailure(f"the real state became non-finite at step {t}")
        conn.send(("stop",))
        record["status"] = "ok"
        record["return"] = total
    except PlannerFailure as e:
        record["error"] = str(e)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        record["error"] = "planner process closed the pipe"
    finally:
        proc.join(timeout=5.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
        conn.close()

    wall = time.time() - t_start
    if out_dir:
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump(record, f)
    if record["status"] == "ok":
        steps = record["steps_per_control"]
        print(
            f"[{label}] seed {seed}: return {total:.3f} over {env.episode_len} steps; "
            f"model steps per control step: mean {np.mean(steps):.0f}, max {max(steps)} "
            f"(budget {env.budget}); refused requests {record['refused']}; {wall:.1f}s"
        )
        return 0
    print(f"[{label}] seed {seed}: FAILED: {record['error']}", file=sys.stderr)
    return 1


def main(env_cls, label: str) -> None:
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out_dir = os.environ.get("MLSBENCH_OUT")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    sys.exit(run_episode(env_cls, seed, out_dir, label))
