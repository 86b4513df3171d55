"""Fixed harness: the denoiser and the environments live in the parent process, the sampler in a
spawn child that sees neither the observations nor the weights.

For every action chunk of the closed-loop rollouts (all episodes of a setting in one batch) the
parent asks the child for a chunk and answers its denoiser calls; it counts the calls per chunk
and refuses every call beyond the budget. Protocol over a multiprocessing Pipe, raw bytes only
(nothing from the child is unpickled by the parent):
  parent -> child  b"C"                                   sample the next chunk (a new batch)
                   b"Q"                                   the rollouts are over: exit
                   b"O" + eps_theta(x, t) (n*D float64)   the answer to a denoiser call
                   b"E" + utf-8 text                      denoiser call refused
  child -> parent  b"D" + float64 t + x (n*D float64)     a denoiser call for the whole batch
                   b"R" + actions (n*D float64)           the chunk
                   b"X" + utf-8 text                      the sampler raised
                   b"V" + utf-8 text                      the child's guard fired (forbidden event)
The parent writes the artifacts (executed actions, run record) only after the child has exited.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# ------------------------------------------------------------------------------- child side


class RemoteDenoiser:
    """The `denoise` callable handed to the sampler: forwards each call to the parent."""

    def __init__(self, conn, shape):
        self._conn = conn
        self._shape = tuple(shape)

    def __call__(self, x, t):
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
        if x.shape != self._shape:
            raise ValueError(
                f"denoise: x must have shape {self._shape} (the whole batch), got {x.shape}"
            )
        self._conn.send_bytes(b"D" + struct.pack("<d", float(t)) + x.tobytes())
        reply = self._conn.recv_bytes()
        if reply[:1] != b"O":
            raise RuntimeError(
                "denoise refused by the harness: " + reply[1:].decode("utf-8", "replace")
            )
        return np.frombuffer(reply, dtype=np.float64, offset=1).reshape(self._shape).copy()


def _install_guard(conn):
    """Audit hook of the child: the sampler may read Python source and extension modules (imports,
    tracebacks) and nothing else - not the weights, the salt, /proc or the parent; it may not
    start processes or load native libraries. A breach reports itself to the parent and ends the
    child at once (it cannot be caught)."""
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
            if writes or not p.endswith((".py", ".pyc", ".so")):
                breach(
                    f"the sampler opened {p!r} ({'write' if writes else 'read'}): the denoiser's "
                    "weights, the evaluation instances and any other file are off limits"
                )
        elif event.startswith(blocked):
            breach(
                f"the sampler raised the forbidden event {event!r} (processes, native code, "
                "sockets, files and the environment are off limits)"
            )

    sys.addaudithook(hook)


def child_main(conn, shape, nfe, seed):
    try:
        sys.dont_write_bytecode = True
        _install_guard(conn)
        import sampler  # the editable module, imported only in the child, after the guard

        rng = np.random.default_rng(seed)
        den = RemoteDenoiser(conn, shape)
        while True:
            msg = conn.recv_bytes()
            if msg[:1] != b"C":
                break
            out = sampler.sample(den, tuple(shape), int(nfe), rng)
            out = np.ascontiguousarray(np.asarray(out, dtype=np.float64))
            if out.shape != tuple(shape):
                raise ValueError(
                    f"sample() must return an array of shape {tuple(shape)}, got {out.shape}"
                )
            conn.send_bytes(b"R" + out.tobytes())
    except BaseException:  # report any failure of the sampler to the parent, then exit
        msg = traceback.format_exc()[-4000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


class _Fail(Exception):
    pass


def rollout(env, inst, model, nfe, seed, t_min, t_max):
    """Closed-loop rollouts of all episodes with the sampler in a spawn child.
    -> (executed actions (n, T, A) | None, record)."""
    import multiprocessing as mp

    n = inst[next(iter(inst))].shape[0]
    H, A, E = env.horizon, env.act_dim, env.execute
    D = H * A
    nbytes = n * D * 8
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=child_main, args=(child_conn, (n, D), nfe, seed), daemon=True)
    t0 = time.time()
    proc.start()
    child_conn.close()
    calls_per_chunk, refused, times = [], 0, []
    executed, error = [], None
    state = env.init_state(inst)
    try:
        step = 0
        while step < env.max_steps:
            obs = env.obs(state, inst)
            parent_conn.send_bytes(b"C")
            calls, chunk = 0, None
            while chunk is None:
                try:
                    msg = parent_conn.recv_bytes(maxlength=nbytes + 64)
                except EOFError:
                    raise _Fail("the sampler process exited without returning a chunk")
                except OSError as e:
                    raise _Fail(f"protocol error: message too long ({e})")
                kind = msg[:1]
                if kind == b"D":
                    if len(msg) != 9 + nbytes:
                        raise _Fail(
                            f"protocol error: denoiser call of {len(msg)} bytes, expected {9 + nbytes}"
                        )
                    (t,) = struct.unpack("<d", msg[1:9])
                    if calls >= nfe:
                        refused += 1
                        parent_conn.send_bytes(
                            f"E NFE budget exhausted: {nfe} denoiser calls already made for this chunk".encode()
                        )
                        raise _Fail(
                            f"NFE budget exceeded: call {calls + 1} for chunk {len(calls_per_chunk) + 1} "
                            f"with a budget of {nfe} denoiser calls per chunk (the run fails even if "
                            "the sampler catches the refusal)"
                        )
                    if not (math.isfinite(t) and t_min * (1 - 1e-9) <= t <= t_max * (1 + 1e-9)):
                        parent_conn.send_bytes(
                            f"Et={t!r} outside the denoiser's range [{t_min}, {t_max}]".encode()
                        )
                        continue
                    x = np.frombuffer(msg, dtype=np.float64, offset=9).reshape(n, D)
                    if not np.all(np.isfinite(x)):
                        parent_conn.send_bytes(b"Ex contains NaN or inf")
                        continue
                    calls += 1
                    times.append(t)
                    parent_conn.send_bytes(
                        b"O" + np.ascontiguousarray(model.eps(x, t, obs)).tobytes()
                    )
                elif kind == b"R":
                    if len(msg) != 1 + nbytes:
                        raise _Fail(
                            f"protocol error: chunk of {len(msg)} bytes, expected {1 + nbytes}"
                        )
                    chunk = np.frombuffer(msg, dtype=np.float64, offset=1).reshape(n, H, A)
                elif kind == b"X":
                    raise _Fail("the sampler raised:\n" + msg[1:].decode("utf-8", "replace"))
                elif kind == b"V":
                    raise _Fail("forbidden action: " + msg[1:].decode("utf-8", "replace"))
                else:
                    raise _Fail(f"protocol error: unknown message kind {kind!r}")
            calls_per_chunk.append(calls)
            if not np.all(np.isfinite(chunk)):
                raise _Fail("the sampler returned NaN or inf actions")
            chunk = np.clip(chunk, -1.0, 1.0)
            for k in range(min(E, env.max_steps - step)):
                executed.append(chunk[:, k])
                state = env.step(state, chunk[:, k])
                step += 1
        parent_conn.send_bytes(b"Q")
    except _Fail as e:
        error = str(e)
    except (BrokenPipeError, ConnectionResetError) as e:
        error = f"the sampler process died ({e!r})"
    finally:
        parent_conn.close()
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    ok = error is None and len(executed) == env.max_steps
    record = dict(
        env=env.name,
        nfe_budget=int(nfe),
        calls_per_chunk=[int(c) for c in calls_per_chunk],
        nfe_max_per_chunk=int(max(calls_per_chunk, default=0)),
        refused_calls=int(refused),
        n_chunks=len(calls_per_chunk),
        episodes=int(n),
        times_first_chunk=[float(t) for t in times[: calls_per_chunk[0]]]
        if calls_per_chunk
        else [],
        child_exitcode=proc.exitcode,
        wall_s=round(time.time() - t0, 3),
        status="ok" if ok else "error",
        error=error,
    )
    actions = np.stack(executed, 1) if ok else None
    return actions, record


def write_artifacts(out_dir: Path, actions, record: dict) -> None:
    """Called after the child has exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if actions is not None:
        np.save(out_dir / "actions.npy", actions, allow_pickle=False)
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
