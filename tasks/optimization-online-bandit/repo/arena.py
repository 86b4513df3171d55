"""The policy's side of the harness (fixed). Runs in the child process started by the task kit,
after it has dropped its privileges: it can read policy.py and nothing else of this folder.

Wire format (raw bytes, no pickling), one round trip per step:
  parent -> child  b"C" + contexts of step 0 (float64, n_runs x n_arms x dim; empty without
                   contexts), then after every step b"R" + rewards (uint8, n_runs) + the contexts
                   of the next step (none after the last);
  child -> parent  b"A" + the pulled arms (int32, n_runs) each step, b"D" when done.
"""

from __future__ import annotations

import numpy as np


def _contexts(body: bytes, n_runs: int, n_arms: int, dim: int):
    if not dim:
        return None
    ctx = np.frombuffer(body, dtype="<f8").reshape(n_runs, n_arms, dim)
    ctx.setflags(write=False)
    return ctx


def _arms(chosen, n_runs: int, n_arms: int) -> np.ndarray:
    a = np.asarray(chosen)
    if a.shape != (n_runs,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"select() must return an integer array of shape ({n_runs},), got "
                         f"dtype {a.dtype} and shape {a.shape}")
    if a.min() < 0 or a.max() >= n_arms:
        raise ValueError(f"select() returned an arm outside [0, {n_arms})")
    return a.astype("<i4")


def child_main(conn, n_runs, n_arms, horizon, dim, seed):
    """Entry point of the child process: play `horizon` steps of the policy."""
    rng = np.random.default_rng(seed)
    import policy  # imported here so that only this process runs the editable code

    pol = policy.Policy(n_runs, n_arms, horizon, dim, rng)
    msg = conn.recv_bytes()
    for t in range(horizon):
        arms = _arms(pol.select(t, _contexts(msg[1:], n_runs, n_arms, dim)), n_runs, n_arms)
        conn.send_bytes(b"A" + arms.tobytes())
        msg = conn.recv_bytes()
        rewards = np.frombuffer(msg, dtype=np.uint8, count=n_runs, offset=1).astype(np.float64)
        pol.update(t, arms.astype(np.int64), rewards)
        msg = b"C" + msg[1 + n_runs :]  # the next step's contexts
    conn.send_bytes(b"D")
