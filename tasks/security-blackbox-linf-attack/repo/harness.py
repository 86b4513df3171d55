"""Fixed harness: the target model, the query counter and the checks live in this (parent)
process; the attack runs in a `spawn` child that can only ask for logits over a pipe.

Protocol over a multiprocessing Pipe, raw bytes only (nothing is unpickled by the parent):
  child -> parent  b"Q" + int32 m + int32 idx[m] + float32 x[m, d]   a query: logits of m images
                   b"R" + float32 x_adv[n, d]                        the attack's final images
                   b"X" + utf-8 text                                 the attack raised
                   b"V" + utf-8 text                                 the child's guard fired
  parent -> child  b"O" + float32 logits[m, k]                       the answer
                   b"E" + utf-8 text                                 the query was refused
The parent charges every answered row to its sample (a batch of m rows costs m), refuses a
batch that would take any sample past the budget and records the attempt (the setting then
fails), refuses rows outside the sample's eps-ball or [0, 1], checks the returned x_adv itself,
decides success with its own forward pass, and writes the artifacts after the child has exited.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import time
import traceback
from pathlib import Path

import numpy as np

TOL = 1e-6  # slack on the eps-ball and [0, 1] checks for float32 rounding

# ------------------------------------------------------------------------------- child side


class Oracle:
    """The `query` callable handed to the attack: forwards each batch to the parent.

    query(x_batch, idx=None) -> logits, float64 array (m, n_classes).
      x_batch: (m, C, H, W) (or (m, C*H*W)) images; row j is charged to sample idx[j]
      (idx=None: m must be n and row j is sample j). Each row must lie in [0, 1] and in the
      eps-ball of its sample's clean image. Every row counts as one query of its sample. A batch
      that breaks the budget, [0, 1] or the eps-ball is refused by the parent (RuntimeError
      here) and the run fails, even if the exception is caught.
    query.remaining() -> int array (n,): queries each sample has left (a copy).
    """

    def __init__(self, conn, n, shape, eps, budget):
        self._conn = conn
        self._n = n
        self._shape = tuple(shape)
        self._d = int(np.prod(shape))
        self._eps = float(eps)
        self._budget = int(budget)
        self._used = np.zeros(n, dtype=np.int64)

    def remaining(self):
        return self._budget - self._used

    def __call__(self, x_batch, idx=None):
        xb = np.asarray(x_batch, dtype=np.float32).reshape(-1, self._d)
        m = xb.shape[0]
        if idx is None:
            if m != self._n:
                raise ValueError(f"query: idx=None needs all {self._n} samples, got {m} rows")
            idx = np.arange(self._n)
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.shape[0] != m or m == 0:
            raise ValueError(
                f"query: {m} rows but {idx.shape[0]} indices (need one index per row, m >= 1)"
            )
        if idx.min() < 0 or idx.max() >= self._n:
            raise ValueError("query: sample index out of range")
        if not np.all(np.isfinite(xb)):
            raise ValueError("query: images contain NaN or inf")
        counts = np.bincount(idx, minlength=self._n)
        # the budget, [0, 1] and the eps-ball are checked (and enforced) by the parent process
        msg = (
            b"Q"
            + struct.pack("<i", m)
            + idx.astype("<i4").tobytes()
            + np.ascontiguousarray(xb).tobytes()
        )
        self._conn.send_bytes(msg)
        reply = self._conn.recv_bytes()
        if reply[:1] != b"O":
            raise RuntimeError(
                "query refused by the harness: " + reply[1:].decode("utf-8", "replace")
            )
        self._used += counts
        return np.frombuffer(reply, dtype=np.float32, offset=1).reshape(m, -1).astype(np.float64)


def _install_guard(conn):
    """Audit hook of the child: the attack may read Python source and extension modules (imports,
    tracebacks) and nothing else - not the weights, the data, /proc or the parent;
    it may not start processes or load native libraries. A breach reports itself to the parent
    and ends the child at once (it cannot be caught)."""
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
                return  # re-wrapping an already open descriptor
            p = os.path.abspath(os.fsdecode(path))
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & write_flags
            )
            if writes or not p.endswith((".py", ".pyc", ".so")):
                breach(
                    f"the attack opened {p!r} ({'write' if writes else 'read'}): the target model's "
                    "weights, the data, the labels and any other file are off limits (black-box attack)"
                )
        elif event.startswith(blocked):
            breach(
                f"the attack raised the forbidden event {event!r} (processes, native code, sockets, "
                "files and the environment are off limits)"
            )

    sys.addaudithook(hook)


def child_main(conn, x0, y, eps, budget, seed):
    try:
        sys.dont_write_bytecode = True
        _install_guard(conn)
        import attack  # the editable module, imported only in the child, after the guard

        n = x0.shape[0]
        oracle = Oracle(conn, n, x0.shape[1:], eps, budget)
        rng = np.random.default_rng(seed)
        out = attack.attack(oracle, x0.copy(), y.copy(), float(eps), int(budget), rng)
        out = np.ascontiguousarray(np.asarray(out, dtype=np.float32))
        if out.size != x0.size:
            raise ValueError(f"attack() must return an array of shape {x0.shape}, got {out.shape}")
        conn.send_bytes(b"R" + out.tobytes())
    except BaseException:  # report any failure of the attack to the parent, then exit
        msg = traceback.format_exc()[-4000:]
        try:
            conn.send_bytes(b"X" + msg.encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()


# ------------------------------------------------------------------------------ parent side


def serve(model, x0, y, eps, budget, seed, child_timeout_s=600.0):
    """Run the attack in a spawn child, answer its queries; return (x_adv|None, record)."""
    import multiprocessing as mp

    import torch

    n = x0.shape[0]
    d = int(np.prod(x0.shape[1:]))
    x0f = x0.reshape(n, d)
    k = int(model(torch.from_numpy(x0[:1])).shape[1])
    max_rows = n * budget  # no single batch can be larger than the whole budget
    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=child_main, args=(child_conn, x0, y, eps, budget, seed), daemon=True)
    t0 = time.time()
    proc.start()
    child_conn.close()
    used = np.zeros(n, dtype=np.int64)
    batches, over_budget, bad_queries = 0, 0, 0
    x_adv, error, violation = None, None, None
    try:
        while True:
            if not parent_conn.poll(max(1.0, child_timeout_s - (time.time() - t0))):
                error = f"the attack did not finish within {child_timeout_s:.0f} s"
                break
            try:
                msg = parent_conn.recv_bytes(
                    maxlength=5 + max(4 * n * d, max_rows * 4 * (d + 1)) + 64
                )
            except EOFError:
                error = "the attack process exited without returning x_adv"
                break
            except OSError as e:
                error = f"protocol error: message too long ({e})"
                break
            kind = msg[:1]
            if kind == b"Q":
                if len(msg) < 5:
                    error = "protocol error: short query"
                    break
                (m,) = struct.unpack("<i", msg[1:5])
                if not 1 <= m <= max_rows or len(msg) != 5 + 4 * m + 4 * m * d:
                    error = f"protocol error: query of {len(msg)} bytes for m={m}"
                    break
                idx = np.frombuffer(msg, dtype="<i4", count=m, offset=5).astype(np.int64)
                xb = np.frombuffer(msg, dtype=np.float32, offset=5 + 4 * m).reshape(m, d)
                if idx.min() < 0 or idx.max() >= n:
                    bad_queries += 1
                    parent_conn.send_bytes(b"Esample index out of range")
                    continue
                counts = np.bincount(idx, minlength=n)
                if np.any(used + counts > budget):
                    over_budget += 1
                    parent_conn.send_bytes(
                        f"Equery budget of {budget} per sample exhausted".encode()
                    )
                    continue
                dev = (
                    float(np.abs(xb - x0f[idx]).max()) if np.all(np.isfinite(xb)) else float("nan")
                )
                if not (dev <= eps + TOL) or xb.min() < -TOL or xb.max() > 1 + TOL:
                    bad_queries += 1
                    parent_conn.send_bytes(
                        f"Equery rows must be finite, in [0, 1] and within eps = {eps} of their sample's "
                        f"clean image (max deviation {dev:.6f}, range [{xb.min():.4f}, {xb.max():.4f}])".encode()
                    )
                    continue
                used += counts
                batches += 1
                with torch.no_grad():
                    logits = model(torch.from_numpy(xb.reshape((m,) + x0.shape[1:]).copy()))
                parent_conn.send_bytes(b"O" + logits.numpy().astype(np.float32).tobytes())
            elif kind == b"R":
                if len(msg) != 1 + 4 * n * d:
                    error = f"protocol error: result of {len(msg)} bytes, expected {1 + 4 * n * d}"
                else:
                    x_adv = np.frombuffer(msg, dtype=np.float32, offset=1).reshape(x0.shape).copy()
                break
            elif kind == b"X":
                error = "the attack raised:\n" + msg[1:].decode("utf-8", "replace")
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
    wall = time.time() - t0
    record = {
        "n": n,
        "eps": eps,
        "budget": budget,
        "n_classes": k,
        "queries": used.tolist(),
        "query_batches": batches,
        "over_budget_attempts": over_budget,
        "refused_queries": bad_queries,
        "violation": violation,
        "wall_s": round(wall, 3),
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
            error = (
                f"x_adv outside the eps-ball: {len(bad)} samples, max ||x_adv - x||_inf = "
                f"{linf.max():.6f} > eps = {eps}"
            )
        elif xa.min() < -TOL or xa.max() > 1 + TOL:
            error = f"x_adv outside [0, 1]: min {xa.min():.6f}, max {xa.max():.6f}"
        else:
            with torch.no_grad():
                pred = model(torch.from_numpy(x_adv)).argmax(1).numpy()
            success = pred != y
    if over_budget and error is None:
        error = f"the attack attempted to exceed the query budget ({budget} per sample) {over_budget} time(s)"
    if bad_queries and error is None:
        error = (
            f"{bad_queries} invalid query batch(es) refused (rows outside the eps-ball or [0, 1], "
            "or a bad sample index)"
        )
    if violation is not None:
        error = "black-box violation: " + violation
    record["success"] = success.astype(int).tolist()
    record["status"] = "ok" if error is None else "failed"
    record["error"] = error
    return x_adv, record


def write_artifacts(out_dir: Path, x0, x_adv, record) -> None:
    """Called after the child has exited: wipe out_dir, then write the trusted artifacts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    np.save(out_dir / "x_clean.npy", x0, allow_pickle=False)
    if x_adv is not None:
        np.save(out_dir / "x_adv.npy", x_adv, allow_pickle=False)
    (out_dir / "run.json").write_text(json.dumps(record))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
