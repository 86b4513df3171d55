"""Fixed harness: the exact prior lives in the parent process, the solver in a spawn child.

The child gets only what a practitioner with a pretrained diffusion model has: the operator A,
the measurements y, the noise level and the model as an oracle. The prior's parameters never
enter the child. Protocol over a multiprocessing Pipe, raw bytes only (the parent unpickles
nothing the child sends):
  child -> parent  b"D" + float64 sigma + x (n*d float64, C order)   D(x; sigma)                 1 NFE
                   b"B" + v (n*d float64)                          J^T v, J = dD/dx at the last
                                                                   D request's (x, sigma)      1 NFE
                   b"R" + samples (n*d float64)                    the final samples
                   b"X" + utf-8 text                               the solver raised
  parent -> child  b"O" + answer (n*d float64)                     the answer
                   b"E" + utf-8 text                               request refused
NFE: one denoiser evaluation on the whole batch of samples costs 1, and one vector-Jacobian product
through the last evaluation (the backward pass of autograd) costs 1 more, so a guided step that
needs D and J^T v costs 2. The parent counts the cost of what it answers, refuses every request
beyond the budget (the run is then failed by the grader, even if the solver catches the error),
and writes the artifacts only after the child has exited.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import time
import traceback
from pathlib import Path

import numpy as np


# ------------------------------------------------------------------------------- child side


class DiffusionModel:
    """The model handed to the solver: forwards each evaluation to the parent process."""

    def __init__(self, conn, shape, nfe, sigma_min, sigma_max):
        self._conn = conn
        self.shape = tuple(shape)
        self.nfe = int(nfe)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.nfe_used = 0  # informational; the parent keeps the count that matters

    def _x(self, x, name):
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
        if x.shape != self.shape:
            raise ValueError(
                f"{name}: must have shape {self.shape} (the whole batch), got {x.shape}"
            )
        return x

    def _ask(self, payload):
        self._conn.send_bytes(payload)
        reply = self._conn.recv_bytes()
        if reply[:1] != b"O":
            raise RuntimeError(
                "request refused by the harness: " + reply[1:].decode("utf-8", "replace")
            )
        return np.frombuffer(reply, dtype=np.float64, offset=1).reshape(self.shape).copy()

    def denoise(self, x, sigma):
        """D(x; sigma) = E[x0 | x0 + sigma eps = x] on the whole batch. Costs 1 NFE."""
        x = self._x(x, "denoise x")
        out = self._ask(b"D" + struct.pack("<d", float(sigma)) + x.tobytes())
        self.nfe_used += 1
        return out

    def vjp(self, v):
        """J^T v, row by row, with J = dD/dx at the (x, sigma) of the last denoise call (the
        backward pass through that evaluation). Costs 1 NFE."""
        v = self._x(v, "vjp v")
        out = self._ask(b"B" + v.tobytes())
        self.nfe_used += 1
        return out


def child_main(conn, A, y, noise, nfe, sigma_min, sigma_max, seed, dim):
    try:
        import solver  # the editable module, imported only in the child

        shape = (y.shape[0], dim)
        rng = np.random.default_rng(seed)
        model = DiffusionModel(conn, shape, nfe, sigma_min, sigma_max)
        out = solver.solve(model, A.copy(), y.copy(), float(noise), int(nfe), rng)
        out = np.ascontiguousarray(np.asarray(out, dtype=np.float64))
        if out.shape != shape:
            raise ValueError(f"solve() must return an array of shape {shape}, got {out.shape}")
        conn.send_bytes(b"R" + out.tobytes())
    except BaseException:  # report any failure of the solver to the parent, then exit
        msg = traceback.format_exc()[-4000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


def serve(prob: dict, sigma_min, sigma_max, seed, child_timeout_s=600.0):
    """Run the solver in a spawn child, answer its model calls; return (samples|None, record)."""
    import multiprocessing as mp

    prior, nfe = prob["prior"], int(prob["nfe"])
    n, d = prob["y"].shape[0], prior.d
    nbytes = n * d * 8
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(
        target=child_main,
        args=(child_conn, prob["A"], prob["y"], prob["noise"], nfe, sigma_min, sigma_max, seed, d),
        daemon=True,
    )
    t0 = time.time()
    proc.start()
    child_conn.close()
    used, refused, calls, last = 0, 0, [], None
    samples, error = None, None
    try:
        while True:
            if not parent_conn.poll(max(0.0, child_timeout_s - (time.time() - t0))):
                error = f"the solver did not finish within {child_timeout_s:.0f} s"
                break
            try:
                msg = parent_conn.recv_bytes(maxlength=nbytes + 64)
            except EOFError:
                error = "the solver process exited without returning samples"
                break
            except OSError as e:
                error = f"protocol error: message too long ({e})"
                break
            kind = msg[:1]
            if kind in (b"D", b"B"):
                head = 9 if kind == b"D" else 1
                if len(msg) != head + nbytes:
                    error = f"protocol error: request of {len(msg)} bytes, expected {head + nbytes}"
                    break
                if used + 1 > nfe:
                    refused += 1
                    parent_conn.send_bytes(
                        f"E NFE budget exhausted: {used} of {nfe} already used".encode()
                    )
                    continue
                arr = np.frombuffer(msg, dtype=np.float64, offset=head).reshape(n, d)
                if not np.all(np.isfinite(arr)):
                    parent_conn.send_bytes(b"Einput contains NaN or inf")
                    continue
                if kind == b"D":
                    (sigma,) = struct.unpack("<d", msg[1:9])
                    if not (
                        math.isfinite(sigma)
                        and sigma_min * (1 - 1e-9) <= sigma <= sigma_max * (1 + 1e-9)
                    ):
                        parent_conn.send_bytes(
                            f"Esigma={sigma!r} outside the model's range [{sigma_min}, {sigma_max}]".encode()
                        )
                        continue
                    last = (arr.copy(), sigma)
                    ans = prior.denoise(last[0], sigma)
                else:
                    if last is None:
                        parent_conn.send_bytes(b"Evjp before any denoise call")
                        continue
                    sigma = last[1]
                    ans = prior.denoise_vjp(last[0], sigma, arr)[1]
                used += 1
                calls.append([kind.decode(), sigma])
                parent_conn.send_bytes(b"O" + np.ascontiguousarray(ans).tobytes())
            elif kind == b"R":
                if len(msg) != 1 + nbytes:
                    error = f"protocol error: result of {len(msg)} bytes, expected {1 + nbytes}"
                else:
                    samples = np.frombuffer(msg, dtype=np.float64, offset=1).reshape(n, d).copy()
                break
            elif kind == b"X":
                error = "the solver raised:\n" + msg[1:].decode("utf-8", "replace")
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
    record = dict(
        nfe_budget=nfe,
        nfe_used=int(used),
        refused_calls=int(refused),
        calls=calls,
        n_samples=int(n),
        dim=int(d),
        m=int(prob["A"].shape[0]),
        child_exitcode=proc.exitcode,
        wall_s=round(time.time() - t0, 3),
        status="ok" if samples is not None and error is None else "error",
        error=error,
    )
    return samples, record


def write_artifacts(out_dir: Path, samples, record: dict) -> None:
    """Called after the child has exited: wipe whatever is in out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if samples is not None:
        np.save(out_dir / "samples.npy", samples, allow_pickle=False)
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
