"""Fixed file. The constraint handler's process: the task kit's least-privileged child, which
reads constraint.py and nothing else of this folder (not ppo.py, net.py, env.py or the
harness). PPO, the environments and the evaluation run in the parent (harness.py); this
process only answers the handler's calls, as raw byte frames:

  parent -> child  b"U" + float64 ep_costs[n] + float64 ep_returns[n]   handler.update(...)
                   b"C" + float64 adv_r[N] + float64 adv_c[N]           handler.combine(...)
                   b"D"                                                 done: return
  child -> parent  b"K"                      the handler was built / update() returned
                   b"A" + float64 adv[N]     what combine() returned
                   (b"X" / b"V": the kit's; the handler raised / the guard fired)
"""

from __future__ import annotations

import numpy as np


def _f64(payload: bytes, k: int, n: int) -> np.ndarray:
    return np.frombuffer(payload, dtype="<f8", count=n, offset=8 * n * k).copy()


def child_main(conn, cost_limit, num_updates, n_envs, n_steps, seed):
    import constraint  # the editable module: imported here, after the privilege drop

    np.random.seed(seed)
    handler = constraint.ConstraintHandler(float(cost_limit), int(num_updates))
    conn.send_bytes(b"K")
    while True:
        msg = conn.recv_bytes()
        kind, payload = msg[:1], msg[1:]
        if kind == b"U":
            handler.update(_f64(payload, 0, n_envs), _f64(payload, 1, n_envs))
            conn.send_bytes(b"K")
        elif kind == b"C":
            adv = handler.combine(_f64(payload, 0, n_steps), _f64(payload, 1, n_steps))
            adv = np.ascontiguousarray(np.asarray(adv, dtype=np.float64).reshape(-1), dtype="<f8")
            conn.send_bytes(b"A" + adv.tobytes())
        elif kind == b"D":
            return
        else:
            raise RuntimeError(f"protocol error: unknown request {kind!r}")
