"""Fixed harness: the exact denoiser lives in the parent process, the sampler in a spawn child.

Protocol over a multiprocessing Pipe, raw bytes only (nothing is unpickled by the parent):
  child -> parent  b"D" + float64 sigma + x (n*d float64, C order)   a denoiser request
                   b"R" + samples (n*d float64)                      the final samples
                   b"X" + utf-8 text                                 the sampler raised
  parent -> child  b"O" + D(x; sigma) (n*d float64)                  the answer
                   b"E" + utf-8 text                                 request refused
The parent counts the calls it answers, refuses every call beyond the budget (the run is then
failed by the grader), and writes the artifacts only after the child has exited.
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


class RemoteDenoiser:
    """The `denoise` callable handed to the sampler: forwards each call to the parent."""

    def __init__(self, conn, shape):
        self._conn = conn
        self._shape = tuple(shape)

    def __call__(self, x, sigma):
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
        if x.shape != self._shape:
            raise ValueError(
                f"denoise: x must have shape {self._shape} (the whole batch), got {x.shape}"
            )
        sigma = float(sigma)
        self._conn.send_bytes(b"D" + struct.pack("<d", sigma) + x.tobytes())
        reply = self._conn.recv_bytes()
        if reply[:1] != b"O":
            raise RuntimeError(
                "denoise refused by the harness: " + reply[1:].decode("utf-8", "replace")
            )
        return np.frombuffer(reply, dtype=np.float64, offset=1).reshape(self._shape).copy()


def child_main(conn, shape, nfe, sigma_min, sigma_max, seed):
    try:
        import sampler  # the editable module, imported only in the child

        rng = np.random.default_rng(seed)
        out = sampler.sample(
            RemoteDenoiser(conn, shape),
            tuple(shape),
            int(nfe),
            float(sigma_min),
            float(sigma_max),
            rng,
        )
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


def serve(mixture, nfe, n, sigma_min, sigma_max, seed, child_timeout_s=600.0):
    """Run the sampler in a spawn child, answer its denoiser calls; return (samples|None, record)."""
    import multiprocessing as mp

    d = mixture.d
    nbytes = n * d * 8
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(
        target=child_main, args=(child_conn, (n, d), nfe, sigma_min, sigma_max, seed), daemon=True
    )
    t0 = time.time()
    proc.start()
    child_conn.close()
    calls, refused, sigmas = 0, 0, []
    samples, error = None, None
    try:
        while True:
            try:
                msg = parent_conn.recv_bytes(maxlength=nbytes + 64)
            except EOFError:
                error = "the sampler process exited without returning samples"
                break
            except OSError as e:
                error = f"protocol error: message too long ({e})"
                break
            kind = msg[:1]
            if kind == b"D":
                if len(msg) != 9 + nbytes:
                    error = f"protocol error: denoiser request of {len(msg)} bytes, expected {9 + nbytes}"
                    break
                (sigma,) = struct.unpack("<d", msg[1:9])
                if calls >= nfe:
                    refused += 1
                    parent_conn.send_bytes(
                        f"E NFE budget exhausted: {nfe} denoiser calls already made".encode()
                    )
                    continue
                # relative slack of 1e-9 so that a schedule ending exactly at sigma_min is not refused
                # because of rounding
                if not (
                    math.isfinite(sigma)
                    and sigma_min * (1 - 1e-9) <= sigma <= sigma_max * (1 + 1e-9)
                ):
                    parent_conn.send_bytes(
                        f"Esigma={sigma!r} outside the denoiser's range [{sigma_min}, {sigma_max}]".encode()
                    )
                    continue
                x = np.frombuffer(msg, dtype=np.float64, offset=9).reshape(n, d)
                if not np.all(np.isfinite(x)):
                    parent_conn.send_bytes(b"Ex contains NaN or inf")
                    continue
                calls += 1
                sigmas.append(sigma)
                parent_conn.send_bytes(
                    b"O" + np.ascontiguousarray(mixture.denoise(x, sigma)).tobytes()
                )
            elif kind == b"R":
                if len(msg) != 1 + nbytes:
                    error = f"protocol error: result of {len(msg)} bytes, expected {1 + nbytes}"
                else:
                    samples = np.frombuffer(msg, dtype=np.float64, offset=1).reshape(n, d).copy()
                break
            elif kind == b"X":
                error = "the sampler raised:\n" + msg[1:].decode("utf-8", "replace")
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
        nfe_budget=int(nfe),
        nfe_used=int(calls),
        refused_calls=int(refused),
        sigmas=[float(s) for s in sigmas],
        n_samples=int(n),
        dim=int(d),
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
