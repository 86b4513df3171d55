"""Fixed harness: times, measures and checks `attention.attention` from outside its process.

The candidate runs in a `spawn` child. The parent generates every input, tells the child what to
run, and measures the child from the outside:
  - time: the child's *process* CPU clock (clock_gettime on the child's pid clock, all threads,
    nanoseconds), read by the parent just before the command is sent and just after the output
    has arrived. The child runs one thread (torch.set_num_threads(1)); any extra thread it starts
    is charged too. Wall time is recorded for information.
  - memory: the parent resets the child's peak-RSS mark (/proc/<pid>/clear_refs, "5") before a
    call and reads VmHWM after it. The child's glibc is started with a fixed mmap threshold, so
    every allocation >= 64 KiB is its own mapping, returned to the OS when freed: RSS follows the
    live tensors page for page. Memory kept across calls (module-level buffers, caches) is
    charged through the growth of the child's anonymous RSS since before the candidate was
    imported.
  - exactness: the child sends every output back; the parent compares it with a float64
    reference, on random query rows of every timed call (rows drawn after the call) and on
    every row of extra check calls (large logits, near one-hot attention, lengths that are no
    multiple of a block size).
Timed calls interleave the candidate (A) and the fixed naive reference (B) on the same fresh
inputs, in the order AB, BA, AB, ... after warm-up rounds; the speed-up is the median over rounds
of t_B / t_A (reported), and the roofline fraction (the metric) is the median over rounds of the
causal FLOPs' time at the GEMM probe's rate of that round over t_A. Peak memory: the metric is the
reference's peak over the candidate's peak (a memory reduction factor, like a speed-up).

Protocol over a multiprocessing Pipe, raw bytes only (the parent never unpickles):
  parent -> child  b"L" + int32[4] (B, H, T, D) + float32 q, k, v   load inputs   -> b"K"
                   b"I"                                              import the candidate -> b"K"
                   b"A" | b"B" | b"G"   run candidate | reference | GEMM probe -> b"O", then the
                                        float32 output (not for G), then b"K" once it is freed
                   b"C"                 check the last call left q, k, v intact -> b"K"
                   b"Q"                 quit
  child -> parent  b"K" ok, b"O" output follows, b"X" + text: the candidate raised or returned
                   a bad value, b"V" + text: the child's guard fired
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

TOL = 1e-4  # max |out - ref| <= TOL * max |v|   (float32 arithmetic gives ~1e-6)
WARMUP_ROUNDS = 2
TIMED_ROUNDS = 11
ROWS_PER_HEAD = 24  # random query rows checked per (b, h) on every timed call (+ first and last)
CALL_TIMEOUT_S = 120.0
MMAP_THRESHOLD = 65536
PROBE_N = 1024  # the GEMM probe: one (N, N) @ (N, N) float32 matmul, 2 N^3 FLOPs


def causal_flops(b, h, t, d):
    """FLOPs of exact causal attention: QK^T and PV on the lower triangle, diagonal included."""
    return 2 * b * h * t * (t + 1) * d

# ------------------------------------------------------------------------------- child side


def _install_guard(conn):
    """Audit hook of the child: the candidate may read Python source and extension modules
    (imports, tracebacks) and nothing else; it may not start processes, load native libraries,
    open sockets or change the environment. A breach reports itself and ends the child."""
    blocked = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
               "os.fork", "os.forkpty", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym",
               "ctypes.cdata", "socket.connect", "socket.bind", "os.remove", "os.rename",
               "os.symlink", "os.link", "os.chdir", "os.truncate", "os.putenv", "os.unsetenv")
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
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (mode is None and isinstance(flags, int) and flags & write_flags)
            if writes or not p.endswith((".py", ".pyc", ".so")):
                breach(f"the candidate opened {p!r} ({'write' if writes else 'read'}): "
                       "file I/O is off limits")
        elif event.startswith(blocked):
            breach(f"the candidate raised the forbidden event {event!r} (processes, native code, "
                   "sockets, files and the environment are off limits)")

    sys.addaudithook(hook)


def child_main(conn):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    sys.dont_write_bytecode = True
    import reference

    fns = {b"B": reference.naive_attention, b"G": reference.make_probe(PROBE_N)}
    q = k = v = raw = None
    shape = None
    try:
        _install_guard(conn)
        conn.send_bytes(b"K")
        while True:
            msg = conn.recv_bytes()
            kind = msg[:1]
            if kind == b"Q":
                conn.close()
                os._exit(0)  # skip the interpreter's teardown (seconds with torch loaded)
            if kind == b"L":
                q = k = v = raw = None
                shape = struct.unpack("<4i", msg[1:17])
                raw = msg[17:]
                n = int(np.prod(shape))
                arr = np.frombuffer(raw, dtype=np.float32).reshape((3,) + tuple(shape))
                q, k, v = (torch.from_numpy(arr[i].copy()) for i in range(3))
                del msg, arr
                conn.send_bytes(b"K")
            elif kind == b"I":
                try:
                    import attention  # the editable module, imported after the guard

                    fns[b"A"] = attention.attention
                except BaseException:
                    conn.send_bytes(b"X" + ("importing attention.py raised:\n" +
                                            traceback.format_exc()[-3000:]).encode())
                    continue
                conn.send_bytes(b"K")
            elif kind in (b"A", b"B", b"G"):
                try:
                    if kind != b"A":
                        torch.set_num_threads(1)
                    out = fns[kind](q, k, v)
                    if kind == b"A" and torch.get_num_threads() != 1:
                        raise RuntimeError("attention() changed torch's number of threads: the "
                                           "harness runs everything in one thread")
                    if kind != b"G":
                        if not isinstance(out, torch.Tensor):
                            raise TypeError(f"attention() returned {type(out).__name__}, not a tensor")
                        if out.dtype != torch.float32 or tuple(out.shape) != tuple(shape):
                            raise ValueError(f"attention() returned {out.dtype} {tuple(out.shape)}, "
                                             f"expected torch.float32 {tuple(shape)}")
                        if out.device.type != "cpu" or out.requires_grad or out.is_sparse:
                            raise ValueError("attention() must return a dense CPU tensor without grad")
                        if out.untyped_storage().data_ptr() in {t.untyped_storage().data_ptr() for t in (q, k, v)}:
                            raise ValueError("attention() returned a tensor that shares memory with "
                                             "its inputs (it must return a new tensor)")
                        out = out.contiguous().numpy()
                except BaseException:
                    out = None
                    conn.send_bytes(b"X" + traceback.format_exc()[-3000:].encode("utf-8", "replace"))
                    continue
                conn.send_bytes(b"O")
                if kind != b"G":
                    conn.send_bytes(out)  # a buffer: no copy of the output
                out = None
                conn.send_bytes(b"K")  # the output is freed: the parent may read the RSS again
            elif kind == b"C":
                arr = np.frombuffer(raw, dtype=np.float32).reshape((3,) + tuple(shape))
                same = all(np.array_equal(arr[i], t.numpy()) for i, t in enumerate((q, k, v)))
                conn.send_bytes(b"K" if same else b"Xattention() modified its inputs q, k or v "
                                b"(they must be left unchanged)")
            else:
                conn.send_bytes(b"Xprotocol error")
                break
    except BaseException:
        try:
            conn.send_bytes(b"X" + traceback.format_exc()[-3000:].encode("utf-8", "replace"))
        except Exception:
            pass
    finally:
        conn.close()

# ------------------------------------------------------------------------------ parent side


class CandidateError(Exception):
    pass


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                out[key] = int(val.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(val)
    return out


class Child:
    """The parent's handle on the child: commands, clocks and memory marks."""

    def __init__(self):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe(duplex=True)
        old = os.environ.get("MALLOC_MMAP_THRESHOLD_")
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
        try:
            self.proc = ctx.Process(target=child_main, args=(child_conn,), daemon=True)
            self.proc.start()
        finally:
            if old is None:
                os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
            else:
                os.environ["MALLOC_MMAP_THRESHOLD_"] = old
        child_conn.close()
        self.pid = self.proc.pid
        self.max_threads = None
        self.clock = ((~self.pid) << 3) | 2  # CPU clock of process pid (CPUCLOCK_SCHED)
        self.expect_ok(self.recv())

    def recv(self, maxlength=None):
        if not self.conn.poll(CALL_TIMEOUT_S):
            raise CandidateError(f"the child did not answer within {CALL_TIMEOUT_S:.0f} s")
        try:
            return self.conn.recv_bytes(maxlength)
        except EOFError:
            raise CandidateError("the child process exited unexpectedly") from None

    def expect_ok(self, msg):
        if msg[:1] == b"K":
            return
        self.fail(msg)

    def fail(self, msg):
        kind, text = msg[:1], msg[1:].decode("utf-8", "replace")
        if kind == b"V":
            raise CandidateError("policy violation: " + text)
        if kind == b"X":
            raise CandidateError(text)
        raise CandidateError(f"protocol error: unexpected message {msg[:20]!r}")

    def load(self, q, k, v):
        import numpy as np

        shape = tuple(q.shape)
        data = np.stack([q, k, v]).astype(np.float32)
        self.conn.send_bytes(b"L" + struct.pack("<4i", *shape) + data.tobytes())
        self.expect_ok(self.recv())
        self.shape = shape

    def command(self, kind):
        self.conn.send_bytes(kind)
        self.expect_ok(self.recv())

    def run(self, kind):
        """One measured call: returns (cpu_ns, wall_ns, hwm_bytes, rss_ready, anon_ready, out)."""
        import numpy as np

        st = _status(self.pid)
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark to the current RSS
        nbytes = 4 * int(np.prod(self.shape))
        w0 = time.perf_counter_ns()
        c0 = time.clock_gettime_ns(self.clock)
        self.conn.send_bytes(kind)
        msg = self.recv(64 + 4000)
        if msg[:1] != b"O":
            self.fail(msg)
        out = None
        if kind != b"G":
            data = self.recv(nbytes + 64)
            if len(data) != nbytes:
                raise CandidateError(f"protocol error: output of {len(data)} bytes, expected {nbytes}")
            out = np.frombuffer(data, dtype=np.float32).reshape(self.shape)
        c1 = time.clock_gettime_ns(self.clock)
        w1 = time.perf_counter_ns()
        st1 = _status(self.pid)
        hwm = st1["VmHWM"]
        self.expect_ok(self.recv())
        if self.max_threads is not None and max(st["Threads"], st1["Threads"]) > self.max_threads:
            raise CandidateError(
                f"the candidate started threads ({max(st['Threads'], st1['Threads'])} threads in its "
                f"process, {self.max_threads} before it was imported): it must run in one thread")
        return c1 - c0, w1 - w0, hwm, st["VmRSS"], st["RssAnon"], out

    def close(self):
        try:
            self.conn.send_bytes(b"Q")
        except Exception:
            pass
        self.conn.close()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def exact_rows(q, k, v, rows):
    """float64 causal attention for the query rows `rows` of every (b, h): (B, H, len(rows), D)."""
    import numpy as np

    q = np.ascontiguousarray(q[:, :, rows, :], dtype=np.float64)
    kt = np.ascontiguousarray(k.swapaxes(-1, -2), dtype=np.float64)  # contiguous: BLAS matmul
    v = np.ascontiguousarray(v, dtype=np.float64)
    s = np.matmul(q, kt) / np.sqrt(q.shape[-1])
    s[..., np.arange(kt.shape[-1])[None, :] > rows[:, None]] = -np.inf
    s -= s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.matmul(p, v)


def check_output(out, q, k, v, rows, what):
    """Compare rows `rows` of out (B, H, T, D) with the float64 reference (numpy, this process)."""
    import numpy as np

    o = out[:, :, rows, :].astype(np.float64)
    if not np.all(np.isfinite(o)):
        raise CandidateError(f"inexact attention ({what}): the output contains NaN or inf")
    scale = float(np.abs(v).max())
    worst = 0.0
    for c in range(0, len(rows), 256):
        r = rows[c:c + 256]
        worst = max(worst, float(np.abs(o[:, :, c:c + 256, :] - exact_rows(q, k, v, r)).max()))
    if not worst <= TOL * scale:
        raise CandidateError(
            f"inexact attention ({what}): max |out - ref| = {worst:.3e} > {TOL:g} * max|v| = "
            f"{TOL * scale:.3e} (the output must equal exact causal softmax attention up to "
            "float32 rounding)")
    return worst / scale


def draw(rng, shape, kind="normal"):
    """Inputs of a call. normal: N(0, 1) entries (timed calls); large: logits of std ~9;
    onehot: every query aligned with one earlier key (near one-hot attention rows)."""
    import numpy as np

    q, k, v = (rng.standard_normal(shape, dtype=np.float32) for _ in range(3))
    if kind == "large":
        q, k = q * 3.0, k * 3.0
    elif kind == "onehot":
        t = shape[2]
        pick = (rng.random(shape[:3]) * (np.arange(t) + 1)).astype(np.int64)
        q = 8.0 * np.take_along_axis(k, pick[..., None], axis=2) + 0.1 * q
    return tuple(np.ascontiguousarray(x, dtype=np.float32) for x in (q, k, v))


def measure(cfg, seed):
    """Run the whole protocol for one setting; returns the record written to run.json.
    The parent does not import torch: inputs and the float64 reference are numpy."""
    import numpy as np

    shape = (int(cfg["B"]), int(cfg["H"]), int(cfg["T"]), int(cfg["D"]))
    B, H, T, D = shape
    rng = np.random.default_rng([seed, B, H, T, D])
    out_bytes = 4 * B * H * T * D
    rec = {"shape": list(shape), "out_bytes": out_bytes, "tol": TOL, "status": "failed",
           "error": None, "violation": None}
    t_start = time.time()
    child = None
    try:
        child = Child()
        q, k, v = draw(rng, shape)
        child.load(q, k, v)
        for _ in range(2):  # warm the reference and the probe (lazy library init, BLAS buffers)
            child.run(b"B")  # before the candidate exists
            child.run(b"G")
        st_pre = _status(child.pid)
        anon_pre = st_pre["RssAnon"]
        child.max_threads = st_pre["Threads"]
        child.command(b"I")

        def rows_sample():
            r = rng.choice(T, size=min(T, ROWS_PER_HEAD), replace=False)
            return np.unique(np.concatenate([[0, T - 1], r]))

        # extra exactness checks: every row, inputs that stress a kernel
        checks = [("normal", shape, "normal"), ("large logits", shape, "large"),
                  ("near one-hot", shape, "onehot"), ("T - 37", (B, H, T - 37, D), "normal"),
                  ("T = 61", (B, H, 61, D), "normal"), ("T = 1", (B, H, 1, D), "normal")]
        worst = 0.0
        for name, shp, kind in checks:
            cq, ck, cv = draw(rng, shp, kind)
            child.load(cq, ck, cv)
            out = child.run(b"A")[-1]
            child.command(b"C")
            worst = max(worst, check_output(out, cq, ck, cv, np.arange(shp[2]),
                                            f"check input '{name}', shape {shp}"))
        rec["full_checks"] = [c[0] for c in checks]

        cand, ref, gemm = [], [], []
        for r in range(WARMUP_ROUNDS + TIMED_ROUNDS):
            q, k, v = draw(rng, shape)
            child.load(q, k, v)
            order = (b"A", b"B") if r % 2 == 0 else (b"B", b"A")
            res = {}
            for kind in order + (b"G",):
                res[kind] = child.run(kind)
            child.command(b"C")
            worst = max(worst, check_output(res[b"A"][-1], q, k, v, rows_sample(), f"timed call {r}"))
            if r >= WARMUP_ROUNDS:
                c, w, hwm, rss, anon, _ = res[b"A"]
                cand.append((c, w, hwm - rss + max(0, anon - anon_pre)))
                c, w, hwm, rss, anon, _ = res[b"B"]
                ref.append((c, w, hwm - rss))
                gemm.append(res[b"G"][0])
        child.close()
        child = None
        # roofline time of the call: the causal FLOPs at the GEMM probe's rate of this round
        scale = causal_flops(*shape) / (2.0 * PROBE_N ** 3)
        frac = [g * scale / a[0] for a, g in zip(cand, gemm)]
        ratio = [b[0] / a[0] for a, b in zip(cand, ref)]
        wall_ratio = [b[1] / a[1] for a, b in zip(cand, ref)]
        roof = [b[0] / (g * scale) for b, g in zip(ref, gemm)]
        peak = max(a[2] for a in cand)
        rec.update(
            status="ok",
            roofline_fraction=float(np.median(frac)),
            roofline_fraction_iqr=[float(np.percentile(frac, 25)), float(np.percentile(frac, 75))],
            speedup=float(np.median(ratio)),
            speedup_iqr=[float(np.percentile(ratio, 25)), float(np.percentile(ratio, 75))],
            wall_speedup=float(np.median(wall_ratio)),
            max_speedup=float(np.median(roof)),
            mem_reduction=max(b[2] for b in ref) / max(peak, 4096),
            peak_mem_ratio=peak / out_bytes,
            peak_mem_bytes=int(peak),
            ref_peak_mem_bytes=int(max(b[2] for b in ref)),
            gflops_probe=float(2.0 * PROBE_N ** 3 / np.median(gemm)),
            cand_cpu_ms=[round(a[0] / 1e6, 3) for a in cand],
            ref_cpu_ms=[round(b[0] / 1e6, 3) for b in ref],
            gemm_cpu_ms=[round(g / 1e6, 3) for g in gemm],
            cand_mem_bytes=[int(a[2]) for a in cand],
            max_rel_error=worst,
        )
    except CandidateError as e:
        msg = str(e)
        if msg.startswith("policy violation: "):
            rec["violation"] = msg[len("policy violation: "):]
        rec["error"] = msg
    finally:
        if child is not None:
            child.close()
    rec["wall_s"] = round(time.time() - t_start, 3)
    return rec


def write_artifacts(out_dir: Path, record) -> None:
    """Called after the child has exited: wipe out_dir, then write the trusted record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    (out_dir / "run.json").write_text(json.dumps(record))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
