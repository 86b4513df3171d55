"""Fixed harness: the exact denoiser lives in this (parent) process, the sampler in the task
kit's least-privileged child, which reads sampler.py and nothing else of this folder (not
gmm.py, not problems.py, never a hidden spec) and cannot see this process.

Frames (raw bytes; the parent unpickles nothing the child sends):
  child -> parent  b"D" + float64 sigma + x (n*d float64, C order)   a denoiser call (1 NFE)
                   b"R" + samples (n*d float64)                      the final samples
  parent -> child  b"O" + D(x; sigma) (n*d float64)                  the answer
                   b"E" + utf-8 text                                 call refused
The parent counts the NFE of the calls it answers and refuses every call beyond the budget
(the grader then fails the run, even if the sampler caught the refusal).
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
        self._conn, self._shape = conn, tuple(shape)

    def __call__(self, x, sigma):
        return ask_parent(self._conn, b"D" + struct.pack("<d", float(sigma)), x, self._shape,
                          "denoise: x")


def child_main(conn, shape, nfe, sigma_min, sigma_max, seed):
    import sampler  # the editable module, imported after the kit dropped this process's rights

    shape = tuple(shape)
    out = sampler.sample(RemoteDenoiser(conn, shape), shape, int(nfe), float(sigma_min),
                         float(sigma_max), np.random.default_rng(seed))
    out = np.ascontiguousarray(np.asarray(out, dtype=np.float64))
    if out.shape != shape:
        raise ValueError(f"sample() must return an array of shape {shape}, got {out.shape}")
    conn.send_bytes(b"R" + out.tobytes())

# ------------------------------------------------------------------------------ parent side


def serve(mixture, nfe, n, sigma_min, sigma_max, seed):
    """Run the sampler in a kit child, answer its denoiser calls; return (samples|None, record)."""
    d = mixture.d
    nbytes = n * d * 8
    budget = Budget("nfe", nfe)
    sigmas, samples, error, isolation, code = [], None, None, None, None
    t0 = time.time()
    try:
        with Child("harness:child_main", (n, d), nfe, sigma_min, sigma_max, seed,
                   may_read=("sampler.py",), name="sampler") as child:
            isolation = child.isolation
            while samples is None:
                msg = child.recv(maxlength=9 + nbytes)
                if msg[:1] == b"R" and len(msg) == 1 + nbytes:
                    samples = np.frombuffer(msg, dtype=np.float64, offset=1).reshape(n, d).copy()
                    break
                if msg[:1] != b"D" or len(msg) != 9 + nbytes:
                    raise RunFailure(f"protocol error: a message of kind {msg[:1]!r} and "
                                     f"{len(msg)} bytes (a call is b'D' and {9 + nbytes} bytes, "
                                     f"the samples b'R' and {1 + nbytes})")
                (sigma,) = struct.unpack("<d", msg[1:9])
                x = np.frombuffer(msg, dtype=np.float64, offset=9).reshape(n, d)
                if not budget.left:  # refused (and counted as refused) before anything else
                    child.send(b"E", budget.charge(1).encode())
                # relative slack of 1e-9: a schedule ending exactly at sigma_min is not refused
                elif not (math.isfinite(sigma) and sigma_min * (1 - 1e-9) <= sigma <= sigma_max * (1 + 1e-9)):
                    child.send(b"E", f"sigma={sigma!r} outside the denoiser's range "
                                     f"[{sigma_min}, {sigma_max}]".encode())
                elif not np.all(np.isfinite(x)):
                    child.send(b"E", b"x contains NaN or inf")
                else:
                    budget.charge(1)
                    sigmas.append(sigma)
                    child.send(b"O", np.ascontiguousarray(mixture.denoise(x, sigma)).tobytes())
            code = child.close(grace_s=30)
    except RunFailure as e:
        error = str(e)
    record = dict(nfe_budget=int(nfe), nfe_used=budget.used, refused_calls=budget.refused,
                  sigmas=[float(s) for s in sigmas], n_samples=int(n), dim=int(d),
                  child_exitcode=code, isolation=isolation, wall_s=round(time.time() - t0, 3),
                  status="ok" if samples is not None and error is None else "error", error=error)
    return samples, record
