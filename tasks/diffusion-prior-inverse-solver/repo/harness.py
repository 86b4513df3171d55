"""Fixed harness: the exact prior lives in this (parent) process, the solver in the task kit's
least-privileged child, which reads solver.py and nothing else of this folder (not gmm.py or
problems.py, never the salt or a hidden spec) and cannot see this process.

The child gets only what a practitioner with a pretrained diffusion model has: the operator A,
the measurements y, the noise level and the model as an oracle. Frames (raw bytes; the parent
unpickles nothing the child sends):
  child -> parent  b"D" + float64 sigma + x (n*d float64, C order)   D(x; sigma)                 1 NFE
                   b"B" + v (n*d float64)                          J^T v, J = dD/dx at the last
                                                                   D request's (x, sigma)      1 NFE
                   b"R" + samples (n*d float64)                    the final samples
  parent -> child  b"O" + answer (n*d float64)                     the answer
                   b"E" + utf-8 text                               request refused
NFE: one denoiser evaluation on the whole batch of samples costs 1, and one vector-Jacobian product
through the last evaluation (the backward pass of autograd) costs 1 more, so a guided step that
needs D and J^T v costs 2. The parent counts the cost of what it answers and refuses every request
beyond the budget (the grader then fails the run, even if the solver caught the refusal).
"""

from __future__ import annotations

import math
import struct
import time

import numpy as np

from taskkit import Budget, Child, RunFailure, ask_parent

# ------------------------------------------------------------------------------- child side


class DiffusionModel:
    """The model handed to the solver: forwards each evaluation to the parent process."""

    def __init__(self, conn, shape, nfe, sigma_min, sigma_max):
        self._conn = conn
        self.shape = tuple(shape)
        self.nfe = int(nfe)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.nfe_used = 0          # informational; the parent keeps the count that matters

    def _ask(self, head, x, name):
        out = ask_parent(self._conn, head, x, self.shape, name)
        self.nfe_used += 1
        return out

    def denoise(self, x, sigma):
        """D(x; sigma) = E[x0 | x0 + sigma eps = x] on the whole batch. Costs 1 NFE."""
        return self._ask(b"D" + struct.pack("<d", float(sigma)), x, "denoise x")

    def vjp(self, v):
        """J^T v, row by row, with J = dD/dx at the (x, sigma) of the last denoise call (the
        backward pass through that evaluation). Costs 1 NFE."""
        return self._ask(b"B", v, "vjp v")


def child_main(conn, A, y, noise, nfe, sigma_min, sigma_max, seed):
    import solver  # the editable module, imported after the kit dropped this process's rights

    A, y = np.array(A, dtype=np.float64), np.array(y, dtype=np.float64)
    shape = (y.shape[0], A.shape[1])
    model = DiffusionModel(conn, shape, nfe, sigma_min, sigma_max)
    out = solver.solve(model, A, y, float(noise), int(nfe), np.random.default_rng(seed))
    out = np.ascontiguousarray(np.asarray(out, dtype=np.float64))
    if out.shape != shape:
        raise ValueError(f"solve() must return an array of shape {shape}, got {out.shape}")
    conn.send_bytes(b"R" + out.tobytes())

# ------------------------------------------------------------------------------ parent side


def _invalid(kind, arr, sigma, sigma_min, sigma_max, last) -> str | None:
    """Why a request cannot be answered (it is then refused and costs nothing), or None."""
    if not np.all(np.isfinite(arr)):
        return "input contains NaN or inf"
    if kind == b"B" and not last:
        return "vjp before any denoise call"
    # relative slack of 1e-9: a schedule ending exactly at sigma_min is not refused
    if kind == b"D" and not (math.isfinite(sigma) and sigma_min * (1 - 1e-9) <= sigma <= sigma_max * (1 + 1e-9)):
        return f"sigma={sigma!r} outside the model's range [{sigma_min}, {sigma_max}]"
    return None


def serve(prob: dict, sigma_min, sigma_max, seed):
    """Run the solver in a kit child, answer its model calls; return (samples|None, record)."""
    prior, nfe = prob["prior"], int(prob["nfe"])
    n, d = prob["y"].shape[0], prior.d
    nbytes = n * d * 8
    budget, calls, last = Budget("nfe", nfe), [], []
    samples, error, isolation, code = None, None, None, None
    t0 = time.time()
    try:
        with Child("harness:child_main", prob["A"].tolist(), prob["y"].tolist(), prob["noise"],
                   nfe, sigma_min, sigma_max, seed, may_read=("solver.py",), name="solver") as child:
            isolation = child.isolation
            while samples is None:
                msg = child.recv(maxlength=9 + nbytes)
                kind, head = msg[:1], {b"D": 9, b"B": 1, b"R": 1}.get(msg[:1], 0)
                if not head or len(msg) != head + nbytes:
                    raise RunFailure(f"protocol error: a message of kind {kind!r} and {len(msg)} "
                                     f"bytes (requests are b'D' + 8 + {nbytes} bytes or b'B' + "
                                     f"{nbytes}, the samples b'R' + {nbytes})")
                arr = np.frombuffer(msg, dtype=np.float64, offset=head).reshape(n, d)
                sigma = struct.unpack("<d", msg[1:9])[0] if kind == b"D" else None
                if kind == b"R":
                    samples = arr.copy()
                elif not budget.left:  # refused (and counted as refused) before anything else
                    child.send(b"E", budget.charge(1).encode())
                elif why := _invalid(kind, arr, sigma, sigma_min, sigma_max, last):
                    child.send(b"E", why.encode())
                else:
                    budget.charge(1)
                    if kind == b"D":
                        last[:] = [arr.copy(), sigma]
                        ans = prior.denoise(last[0], sigma)
                    else:
                        ans = prior.denoise_vjp(last[0], last[1], arr)[1]
                    calls.append([kind.decode(), last[1]])
                    child.send(b"O", np.ascontiguousarray(ans).tobytes())
            code = child.close(grace_s=30)
    except RunFailure as e:
        error = str(e)
    record = dict(nfe_budget=nfe, nfe_used=budget.used, refused_calls=budget.refused, calls=calls,
                  n_samples=int(n), dim=int(d), m=int(prob["A"].shape[0]), child_exitcode=code,
                  isolation=isolation, wall_s=round(time.time() - t0, 3),
                  status="ok" if samples is not None and error is None else "error", error=error)
    return samples, record
