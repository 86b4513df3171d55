"""Fixed harness: the target model, the query counter and the checks live in this (parent)
process; the attack runs in the task kit's least-privileged child (oracle.py: it reads
attack.py and nothing else of this folder, nor the data sets) that can only ask for logits over
a pipe of raw byte frames (see oracle.py; the kit adds b"X" and b"V": the attack raised, or
broke the black-box boundary). The parent charges every answered row to its sample (a batch of m rows costs m), refuses a
batch that would take any sample past the budget and records the attempt (the setting then
fails), refuses rows outside the sample's eps-ball or [0, 1], checks the returned x_adv itself,
decides success with its own forward pass, and writes the artifacts after the child has exited.
"""
from __future__ import annotations

import struct
import time

import numpy as np
from taskkit import Child, RunFailure

TOL = 1e-6  # slack on the eps-ball and [0, 1] checks for float32 rounding

def serve(model, x0, y, eps, budget, seed, child_timeout_s=600.0):
    """Run the attack in the kit's child, answer its queries; return (x_adv|None, record)."""
    import torch

    n = x0.shape[0]
    d = int(np.prod(x0.shape[1:]))
    x0f = x0.reshape(n, d)
    k = int(model(torch.from_numpy(x0[:1])).shape[1])
    max_rows = n * budget  # no single batch can be larger than the whole budget
    used = np.zeros(n, dtype=np.int64)  # the count that matters: queries charged per sample
    batches, over_budget, bad_queries = 0, 0, 0
    x_adv, error, violation, isolation = None, None, None, None
    t0, child = time.time(), None
    try:
        # the attack's process reads attack.py and nothing else of this folder
        child = Child("oracle:child_main", np.ascontiguousarray(x0, dtype="<f4").tobytes(),
                      list(x0.shape), [int(v) for v in y], float(eps), int(budget), int(seed),
                      may_read=["attack.py"], name="attack", timeout_s=child_timeout_s)
        isolation = child.isolation
        while True:
            msg = child.recv(maxlength=5 + max(4 * n * d, max_rows * 4 * (d + 1)) + 64,
                             timeout_s=max(1.0, child_timeout_s - (time.time() - t0)))
            kind = msg[:1]
            if kind == b"Q":
                if len(msg) < 5:
                    raise RunFailure("protocol error: short query")
                (m,) = struct.unpack("<i", msg[1:5])
                if not 1 <= m <= max_rows or len(msg) != 5 + 4 * m + 4 * m * d:
                    raise RunFailure(f"protocol error: query of {len(msg)} bytes for m={m}")
                idx = np.frombuffer(msg, dtype="<i4", count=m, offset=5).astype(np.int64)
                xb = np.frombuffer(msg, dtype="<f4", offset=5 + 4 * m).reshape(m, d)
                if idx.min() < 0 or idx.max() >= n:
                    bad_queries += 1
                    child.send(b"E", b"sample index out of range")
                    continue
                counts = np.bincount(idx, minlength=n)
                if np.any(used + counts > budget):
                    over_budget += 1
                    child.send(b"E", f"query budget of {budget} per sample exhausted".encode())
                    continue
                dev = float(np.abs(xb - x0f[idx]).max()) if np.all(np.isfinite(xb)) else np.nan
                if not (dev <= eps + TOL) or xb.min() < -TOL or xb.max() > 1 + TOL:
                    bad_queries += 1
                    child.send(b"E", (
                        f"query rows must be finite, in [0, 1] and within eps = {eps} of their "
                        f"sample's clean image (max deviation {dev:.6f}, range "
                        f"[{xb.min():.4f}, {xb.max():.4f}])").encode())
                    continue
                used += counts
                batches += 1
                with torch.no_grad():
                    logits = model(torch.from_numpy(xb.reshape((m,) + x0.shape[1:]).copy()))
                child.send(b"O", logits.numpy().astype("<f4").tobytes())
            elif kind == b"R":
                if len(msg) != 1 + 4 * n * d:
                    raise RunFailure(
                        f"protocol error: result of {len(msg)} bytes, expected {1 + 4 * n * d}")
                x_adv = np.frombuffer(msg, dtype="<f4", offset=1).reshape(x0.shape).copy()
                break
            else:
                raise RunFailure(f"protocol error: unknown message kind {kind!r}")
    except RunFailure as e:
        text = str(e)
        if text.startswith("policy violation: "):
            violation = text.removeprefix("policy violation: ")
        else:
            error = ("the attack raised:\n" + text) if text.startswith("Traceback") else text
    finally:
        if child is not None:
            child.close(grace_s=30)
    wall = time.time() - t0
    record = {
        "n": n, "eps": eps, "budget": budget, "n_classes": k, "isolation": isolation,
        "queries": used.tolist(), "query_batches": batches,
        "over_budget_attempts": over_budget, "refused_queries": bad_queries,
        "violation": violation, "wall_s": round(wall, 3),
    }
    success = np.zeros(n, dtype=bool)
    if violation is None and error is None and x_adv is not None:
        xa = x_adv.reshape(n, d)
        linf = np.abs(xa - x0f).max(axis=1)
        record["linf"] = linf.tolist()
        if not np.all(np.isfinite(xa)):
            error = "x_adv contains NaN or inf"
        elif linf.max() > eps + TOL:
            bad = np.flatnonzero(linf > eps + TOL)
            error = (f"x_adv outside the eps-ball: {len(bad)} samples, max ||x_adv - x||_inf = "
                     f"{linf.max():.6f} > eps = {eps}")
        elif xa.min() < -TOL or xa.max() > 1 + TOL:
            error = f"x_adv outside [0, 1]: min {xa.min():.6f}, max {xa.max():.6f}"
        else:
            with torch.no_grad():
                pred = model(torch.from_numpy(x_adv)).argmax(1).numpy()
            success = pred != y
    if over_budget and error is None:
        error = f"the attack attempted to exceed the query budget ({budget} per sample) {over_budget} time(s)"
    if bad_queries and error is None:
        error = (f"{bad_queries} invalid query batch(es) refused (rows outside the eps-ball or [0, 1], "
                 "or a bad sample index)")
    if violation is not None:
        error = "black-box violation: " + violation
    record["success"] = success.astype(int).tolist()
    record["status"] = "ok" if error is None else "failed"
    record["error"] = error
    return x_adv, record


