"""Fixed harness: the denoiser and the environments live in this (parent) process, the sampler
in the task kit's least-privileged child, which sees neither the observations nor the weights:
it reads sampler.py and nothing else of this folder (not weights/, envs.py, problems.py or
denoiser.py, never the salt or a hidden spec) and cannot see this process.

For every action chunk of the closed-loop rollouts (all episodes of a setting in one batch) the
parent asks the child for a chunk and answers its denoiser calls; it counts the calls per chunk
and refuses every call beyond the budget. Frames (raw bytes; the parent unpickles nothing the
child sends):
  parent -> child  b"C"                                   sample the next chunk (a new batch)
                   b"Q"                                   the rollouts are over: return
                   b"O" + eps_theta(x, t) (n*D float64)   the answer to a denoiser call
                   b"E" + utf-8 text                      denoiser call refused
  child -> parent  b"D" + float64 t + x (n*D float64)     a denoiser call for the whole batch
                   b"R" + actions (n*D float64)           the chunk
"""

from __future__ import annotations

import math
import struct
import time

import numpy as np

from taskkit import Budget, Child, RunFailure, ask_parent

# ------------------------------------------------------------------------------- child side


class RemoteDenoiser:
    """The `denoise` callable handed to the sampler: forwards each call to the parent."""

    def __init__(self, conn, shape):
        self._conn = conn
        self._shape = tuple(shape)

    def __call__(self, x, t):
        return ask_parent(self._conn, b"D" + struct.pack("<d", float(t)), x, self._shape,
                          "denoise: x")


def child_main(conn, shape, nfe, seed):
    import sampler  # the editable module, imported after the kit dropped this process's rights

    shape = tuple(shape)
    rng = np.random.default_rng(seed)
    den = RemoteDenoiser(conn, shape)
    while conn.recv_bytes() == b"C":
        out = np.ascontiguousarray(np.asarray(sampler.sample(den, shape, int(nfe), rng), dtype=np.float64))
        if out.shape != shape:
            raise ValueError(f"sample() must return an array of shape {shape}, got {out.shape}")
        conn.send_bytes(b"R" + out.tobytes())

# ------------------------------------------------------------------------------ parent side


def _chunk(child, index, model, obs, budget, n, D, t_min, t_max, times):
    """Ask the child for chunk ``index`` (from 1) and answer its denoiser calls; returns the chunk (n, D)."""
    nbytes = n * D * 8
    child.send(b"C")
    while True:
        msg = child.recv(maxlength=9 + nbytes)
        if msg[:1] == b"R" and len(msg) == 1 + nbytes:
            return np.frombuffer(msg, dtype=np.float64, offset=1).reshape(n, D)
        if msg[:1] != b"D" or len(msg) != 9 + nbytes:
            raise RunFailure(f"protocol error: a message of kind {msg[:1]!r} and {len(msg)} bytes "
                             f"(a call is b'D' and {9 + nbytes} bytes, a chunk b'R' and {1 + nbytes})")
        (t,) = struct.unpack("<d", msg[1:9])
        x = np.frombuffer(msg, dtype=np.float64, offset=9).reshape(n, D)
        if not budget.left:  # refused, counted, and the run fails
            child.send(b"E", budget.charge(1).encode())
            raise RunFailure(f"NFE budget exceeded: call {budget.limit + 1} for chunk {index} with "
                             f"a budget of {budget.limit} denoiser calls per chunk (the run fails "
                             "even if the sampler catches the refusal)")
        if not (math.isfinite(t) and t_min * (1 - 1e-9) <= t <= t_max * (1 + 1e-9)):
            child.send(b"E", f"t={t!r} outside the denoiser's range [{t_min}, {t_max}]".encode())
        elif not np.all(np.isfinite(x)):
            child.send(b"E", b"x contains NaN or inf")
        else:
            budget.charge(1)
            times.append(t)
            child.send(b"O", np.ascontiguousarray(model.eps(x, t, obs)).tobytes())


def rollout(env, inst, model, nfe, seed, t_min, t_max):
    """Closed-loop rollouts of all episodes with the sampler in a kit child.
    -> (executed actions (n, T, A) | None, record)."""
    n = inst[next(iter(inst))].shape[0]
    H, A, E = env.horizon, env.act_dim, env.execute
    calls_per_chunk, refused, times, executed = [], 0, [], []
    error, isolation, code = None, None, None
    state = env.init_state(inst)
    t0 = time.time()
    try:
        with Child("harness:child_main", (n, H * A), nfe, seed, may_read=("sampler.py",),
                   name="sampler") as child:
            isolation = child.isolation
            step = 0
            while step < env.max_steps:
                budget = Budget("nfe", nfe)  # per chunk: calls cannot be saved up
                try:
                    chunk = _chunk(child, len(calls_per_chunk) + 1, model, env.obs(state, inst),
                                   budget, n, H * A, t_min, t_max, times)
                finally:
                    refused += budget.refused
                    calls_per_chunk.append(budget.used)
                if not np.all(np.isfinite(chunk)):
                    raise RunFailure("the sampler returned NaN or inf actions")
                chunk = np.clip(chunk.reshape(n, H, A), -1.0, 1.0)
                for k in range(min(E, env.max_steps - step)):
                    executed.append(chunk[:, k])
                    state = env.step(state, chunk[:, k])
                    step += 1
            child.send(b"Q")
            code = child.close(grace_s=30)
    except RunFailure as e:
        error = str(e)
    ok = error is None and len(executed) == env.max_steps
    first = calls_per_chunk[0] if calls_per_chunk else 0
    record = dict(env=env.name, nfe_budget=int(nfe), calls_per_chunk=calls_per_chunk,
                  nfe_max_per_chunk=int(max(calls_per_chunk, default=0)), refused_calls=int(refused),
                  n_chunks=len(calls_per_chunk), episodes=int(n),
                  times_first_chunk=[float(t) for t in times[:first]], child_exitcode=code,
                  isolation=isolation, wall_s=round(time.time() - t0, 3),
                  status="ok" if ok else "error", error=error)
    return (np.stack(executed, 1) if ok else None), record
