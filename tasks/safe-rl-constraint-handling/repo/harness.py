"""Fixed harness: the environment, the step counter and the evaluation live in this (parent)
process; the learner (PPO + the editable ConstraintHandler) runs in a `spawn` child that only
sends actions and receives observations, rewards and costs over a pipe.

Protocol (raw bytes; the parent never unpickles anything from the child):
  child -> parent  b"R"                          reset: start the next training episode batch
                   b"A" + float32 act[n, 2]      one step of the n training envs
                   b"P" + float32 params[p]      the final policy's parameters (then exit)
                   b"X" + utf-8 text             the learner raised
                   b"V" + utf-8 text             the child's guard fired
  parent -> child  b"O" + float32 obs[n, d]      answer to a reset
                   b"S" + float32 obs[n, d] + float64 rew[n] + float64 cost[n]   answer to a step
                   b"E" + utf-8 text             refused (the run then fails)
The parent allows exactly `updates` resets and `horizon` steps after each (the budget of
updates x horizon x n env steps), refuses anything else and records it, evaluates the returned
policy itself (deterministic actions, fresh episodes) and writes the artifacts after the child
has exited.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------- child side


def _install_guard(conn):
    """Audit hook of the child: the learner may read Python source and extension modules
    (imports) and nothing else; no processes, native libraries, sockets or file changes.
    A breach reports itself to the parent and ends the child at once."""
    blocked = (
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "socket.connect",
        "socket.bind",
        "os.remove",
        "os.rename",
        "os.symlink",
        "os.link",
        "os.chdir",
        "os.truncate",
        "os.putenv",
        "os.unsetenv",
    )
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    state = {"busy": False}

    def breach(what):
        state["busy"] = True
        try:
            conn.send_bytes(b"V" + what.encode("utf-8", "replace")[:2000])
        finally:
            os._exit(3)

    def hook(event, args):
        if state["busy"]:
            return
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return
            p = os.path.abspath(os.fsdecode(path))
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & write_flags
            )
            if (
                writes
                or not p.endswith((".py", ".pyc", ".so"))
                and not p.startswith("/proc/self/")
                and not p.startswith("/sys/")
            ):
                breach(
                    f"the learner opened {p!r} ({'write' if writes else 'read'}): layouts, "
                    "settings and any other file are off limits"
                )
        elif event.startswith(blocked):
            breach(
                f"the learner raised the forbidden event {event!r} (processes, native code, "
                "sockets, files and the environment are off limits)"
            )

    sys.addaudithook(hook)


def _warm_up(net, obs_dim, act_dim):
    """One throw-away optimizer step, so that torch's lazy imports happen before the guard."""
    import torch

    m = net.Actor(obs_dim, act_dim)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    x = torch.zeros(4, obs_dim)
    loss = m.dist(x).log_prob(torch.zeros(4, act_dim)).sum()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
    opt.step()
    torch.randperm(4, generator=torch.Generator().manual_seed(0))


def child_main(conn, obs_dim, act_dim, n_envs, horizon, updates, cost_limit, seed):
    try:
        sys.dont_write_bytecode = True
        import torch  # loaded before the guard (it reads shared libraries and data files)

        torch.set_num_threads(1)
        import net
        import ppo

        _warm_up(net, obs_dim, act_dim)
        _install_guard(conn)
        import constraint  # the editable module, imported only after the guard

        def reset():
            conn.send_bytes(b"R")
            msg = conn.recv_bytes()
            if msg[:1] != b"O":
                raise RuntimeError(
                    "reset refused by the harness: " + msg[1:].decode("utf-8", "replace")
                )
            return np.frombuffer(msg, dtype=np.float32, offset=1).reshape(n_envs, obs_dim).copy()

        def step(act):
            a = np.ascontiguousarray(np.asarray(act, dtype=np.float32).reshape(n_envs, act_dim))
            conn.send_bytes(b"A" + a.tobytes())
            msg = conn.recv_bytes()
            if msg[:1] != b"S":
                raise RuntimeError(
                    "step refused by the harness: " + msg[1:].decode("utf-8", "replace")
                )
            k = 1 + 4 * n_envs * obs_dim
            obs = (
                np.frombuffer(msg, dtype=np.float32, count=n_envs * obs_dim, offset=1)
                .reshape(n_envs, obs_dim)
                .copy()
            )
            r = np.frombuffer(msg, dtype=np.float64, count=n_envs, offset=k).copy()
            c = np.frombuffer(msg, dtype=np.float64, count=n_envs, offset=k + 8 * n_envs).copy()
            return obs, r, c

        np.random.seed(seed)
        handler = constraint.ConstraintHandler(float(cost_limit), int(updates))
        actor = ppo.train(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates, seed)
        conn.send_bytes(b"P" + net.flat_params(actor).tobytes())
    except BaseException:
        msg = traceback.format_exc()[-4000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


def serve(layout, cfg, seed, child_timeout_s=280.0):
    """Train in a spawn child against the env of this process; return (params|None, record)."""
    import multiprocessing as mp

    import env as envmod

    n, horizon, updates = int(cfg["n_envs"]), int(cfg["horizon"]), int(cfg["updates"])
    layout = dict(layout, horizon=horizon)
    E = envmod.NavEnv(layout, n, seed=1_000_003 * (seed + 1))
    d, ad = envmod.OBS_DIM, envmod.ACT_DIM
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(
        target=child_main,
        daemon=True,
        args=(child_conn, d, ad, n, horizon, updates, float(cfg["cost_limit"]), seed),
    )
    t0 = time.time()
    proc.start()
    child_conn.close()
    resets, steps, refused = 0, 0, 0
    curve_ret, curve_cost = [], []
    ep_r, ep_c = np.zeros(n), np.zeros(n)
    params, error, violation = None, None, None
    in_episode = False
    try:
        while True:
            if not parent_conn.poll(max(1.0, child_timeout_s - (time.time() - t0))):
                error = f"training did not finish within {child_timeout_s:.0f} s"
                break
            try:
                msg = parent_conn.recv_bytes(maxlength=1 << 22)
            except EOFError:
                error = "the learner process exited without returning a policy"
                break
            except OSError as e:
                error = f"protocol error: message too long ({e})"
                break
            kind = msg[:1]
            if kind == b"R":
                if resets >= updates or in_episode:
                    refused += 1
                    parent_conn.send_bytes(
                        f"Eenvironment step budget exhausted: {updates} rollouts of {horizon} steps x {n} envs "
                        f"allowed".encode()
                        if resets >= updates
                        else b"Ereset before the episode ended"
                    )
                    continue
                obs = E.reset()
                resets += 1
                in_episode = True
                ep_r[:], ep_c[:] = 0.0, 0.0
                parent_conn.send_bytes(b"O" + obs.tobytes())
            elif kind == b"A":
                if not in_episode or len(msg) != 1 + 4 * n * ad:
                    refused += 1
                    parent_conn.send_bytes(
                        b"Estep outside an episode or of the wrong size (environment step budget)"
                    )
                    continue
                act = np.frombuffer(msg, dtype=np.float32, offset=1).reshape(n, ad)
                if not np.all(np.isfinite(act)):
                    refused += 1
                    parent_conn.send_bytes(b"Eactions must be finite")
                    continue
                obs, r, c, done = E.step(act)
                steps += n
                ep_r += r
                ep_c += c
                if done:
                    in_episode = False
                    curve_ret.append(float(ep_r.mean()))
                    curve_cost.append(float(ep_c.mean()))
                parent_conn.send_bytes(
                    b"S"
                    + obs.tobytes()
                    + r.astype(np.float64).tobytes()
                    + c.astype(np.float64).tobytes()
                )
            elif kind == b"P":
                params = np.frombuffer(msg, dtype=np.float32, offset=1).copy()
                break
            elif kind == b"X":
                error = "the learner raised:\n" + msg[1:].decode("utf-8", "replace")
                break
            elif kind == b"V":
                violation = msg[1:].decode("utf-8", "replace")
                break
            else:
                error = f"protocol error: unknown message kind {kind!r}"
                break
    finally:
        parent_conn.close()
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    record = {
        "n_envs": n,
        "horizon": horizon,
        "updates": updates,
        "cost_limit": float(cfg["cost_limit"]),
        "env_steps": steps,
        "resets": resets,
        "refused": refused,
        "budget_steps": updates * horizon * n,
        "train_curve_return": curve_ret,
        "train_curve_cost": curve_cost,
        "violation": violation,
        "train_wall_s": round(time.time() - t0, 3),
    }
    if params is not None and (steps != updates * horizon * n or resets != updates):
        error = error or (
            f"the learner returned after {steps} of {updates * horizon * n} env steps"
        )
    if refused and error is None:
        error = f"the learner asked the harness for more environment steps than the budget ({refused} refused requests)"
    if violation is not None:
        error = "sandbox violation: " + violation
    record["error"] = error
    return params, record


def evaluate(layout, cfg, params, seed):
    """Deterministic (mean-action) episodes of the returned policy on fresh layouts."""
    import torch

    import env as envmod
    import net

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


def write_artifacts(out_dir: Path, record) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    (out_dir / "run.json").write_text(json.dumps(record))


def out_dir_from_env() -> Path:
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
