"""Fixed harness: times, measures and checks `attention.attention` from outside its process.

Two children, started with the task kit's Child (worker.serve): the candidate, which imports
attention.py after its privileges are dropped (it reads attention.py and nothing else of this
folder), and the reference, which runs the fixed naive reference and the matmul probe and never
imports attention.py. Nothing the candidate does inside its process (a global torch mode, a
patched function, a thread) can reach the probe or the reference. The parent generates every
input, keeps the pristine copies, and measures both children from the outside:
  - time: a child's process CPU clock (all threads), read by the parent. The candidate is
    charged every nanosecond its process used in a round (loading the inputs, the call, the
    check, and while it waited for the reference), less what the same fixed load and check code
    took in the reference child; the reference is charged its call. Wall time is recorded too.
  - memory: the parent resets a child's peak-RSS mark (/proc/<pid>/clear_refs, "5") before a
    call and reads VmHWM after it; the same around loading the inputs, where what the
    candidate's process takes beyond what the reference child took for the same load (median
    over rounds) counts as a call's peak. The children's glibc is started with a fixed mmap
    threshold, so every allocation >= 64 KiB is its own mapping, returned to the OS when freed:
    RSS follows the live tensors page for page. Memory the candidate keeps across calls
    (module-level buffers, caches) is charged through the growth of its anonymous RSS since
    before it was imported.
  - exactness: the children send every output back as bytes; the parent compares it with a
    float64 reference (numpy), on random query rows of every timed call (drawn after the call)
    and on every row of extra check calls (large logits, near one-hot attention, lengths that
    are no multiple of a block size); it compares the inputs each child sends back after a call
    with the ones it sent.
Timed rounds (after warm-up rounds) run the candidate (A) and the naive reference (B) on the same
fresh inputs, in the order AB, BA, AB, ..., then the GEMM probe (G). The roofline fraction (the
metric) is the median over rounds of the causal FLOPs' time at the probe's rate of that round
over the candidate's time; the speed-up over the naive reference is reported. Peak memory: the
metric is the reference's peak over the candidate's peak (a memory reduction factor).
"""

from __future__ import annotations

import time

import numpy as np
from taskkit import Child, RunFailure

TOL = 1e-4  # max |out - ref| <= TOL * max |v|   (float32 arithmetic gives ~1e-6)
WARMUP_ROUNDS = 2
TIMED_ROUNDS = 11
ROWS_PER_HEAD = 24  # random query rows checked per (b, h) on every timed call (+ first and last)
CALL_TIMEOUT_S = 120.0
MMAP_THRESHOLD = 65536
PROBE_N = 1024  # the GEMM probe: one (N, N) @ (N, N) float32 matmul, 2 N^3 FLOPs
MAY_READ = ("attention.py",)  # the editable module; the interface allows only torch and math


def causal_flops(b, h, t, d):
    """FLOPs of exact causal attention: QK^T and PV on the lower triangle, diagonal included."""
    return 2 * b * h * t * (t + 1) * d


class Worker:
    """The parent's handle on a child: loads, measured calls, clocks and memory marks."""

    def __init__(self, role: str):
        self.role = role
        self.child = Child(
            "worker:serve",
            role,
            PROBE_N,
            may_read=MAY_READ if role == "candidate" else (),
            env={"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)},
            timeout_s=CALL_TIMEOUT_S,
            name=role,
        )
        self.max_threads = None
        self.sent = b""

    def cpu(self) -> int:
        return self.child.cpu_ns()

    def expect(self, kind: bytes, size: int = 0) -> bytes:
        """The next frame's payload, of ``kind`` and ``size`` bytes. Unlike the kit's
        ``expect(kind, size=...)``, a failure frame longer than ``size`` is read whole, so that
        its message (a traceback) reaches the record."""
        msg = self.child.recv(max(size + 1, 1 << 16))
        if msg[:1] != kind or len(msg) != size + 1:
            raise RunFailure(
                f"protocol error: the {self.role} process sent {msg[:1]!r} with {len(msg) - 1} "
                f"bytes, expected {kind!r} with {size} bytes"
            )
        return msg[1:]

    def status(self) -> dict:
        st = self.child.status()
        if self.max_threads is not None and st["Threads"] > self.max_threads:
            raise RunFailure(
                f"the candidate started threads ({st['Threads']} threads in its process, "
                f"{self.max_threads} before it was imported): it must run in one thread"
            )
        return st

    def mark(self) -> dict:
        """The child's status, then its peak-RSS mark reset to the current RSS."""
        st = self.status()
        self.child.reset_peak()
        return st

    def load(self, q, k, v) -> tuple[int, int]:
        """Send the inputs; returns the CPU time and the peak extra memory of loading them."""
        self.shape = tuple(q.shape)
        self.sent = np.stack([q, k, v]).astype("<f4").tobytes()
        st = self.mark()
        c0 = self.cpu()
        self.child.send(b"L", np.array(self.shape, dtype="<i4").tobytes() + self.sent)
        self.expect(b"K")
        return self.cpu() - c0, self.status()["VmHWM"] - st["VmRSS"]

    def command(self, kind: bytes) -> None:
        self.child.send(kind)
        self.expect(b"K")

    def check_inputs(self) -> int:
        """The inputs as the child holds them after a call must be the ones sent; returns the
        CPU time the child took to send them."""
        c0 = self.cpu()
        self.child.send(b"C")
        back = self.expect(b"C", len(self.sent))
        cpu = self.cpu() - c0
        if back != self.sent:
            raise RunFailure(
                "attention() modified its inputs q, k or v (they must be left unchanged)"
            )
        return cpu

    def run(self, kind: bytes):
        """One measured call: (cpu_ns, wall_ns, hwm_bytes, rss_ready, anon_ready, out)."""
        st = self.mark()
        nbytes = 0 if kind == b"G" else 4 * int(np.prod(self.shape))
        w0 = time.perf_counter_ns()
        c0 = self.cpu()
        self.child.send(kind)
        data = self.expect(b"O", nbytes)
        c1 = self.cpu()
        w1 = time.perf_counter_ns()
        st1 = self.status()
        self.expect(b"K")
        out = np.frombuffer(data, dtype="<f4").reshape(self.shape) if nbytes else None
        return c1 - c0, w1 - w0, st1["VmHWM"], st["VmRSS"], st["RssAnon"], out


def exact_rows(q, k, v, rows):
    """float64 causal attention for the query rows `rows` of every (b, h): (B, H, len(rows), D)."""
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
    o = out[:, :, rows, :].astype(np.float64)
    if not np.all(np.isfinite(o)):
        raise RunFailure(f"inexact attention ({what}): the output contains NaN or inf")
    scale = float(np.abs(v).max())
    worst = 0.0
    for c in range(0, len(rows), 256):
        r = rows[c : c + 256]
        worst = max(worst, float(np.abs(o[:, :, c : c + 256, :] - exact_rows(q, k, v, r)).max()))
    if not worst <= TOL * scale:
        raise RunFailure(
            f"inexact attention ({what}): max |out - ref| = {worst:.3e} > {TOL:g} * max|v| = "
            f"{TOL * scale:.3e} (the output must equal exact causal softmax attention up to "
            "float32 rounding)"
        )
    return worst / scale


def draw(rng, shape, kind="normal"):
    """Inputs of a call. normal: N(0, 1) entries (timed calls); large: logits of std ~9;
    onehot: every query aligned with one earlier key (near one-hot attention rows)."""
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
    shape = (int(cfg["B"]), int(cfg["H"]), int(cfg["T"]), int(cfg["D"]))
    B, H, T, D = shape
    rng = np.random.default_rng([seed, B, H, T, D])
    out_bytes = 4 * B * H * T * D
    rec = {
        "shape": list(shape),
        "out_bytes": out_bytes,
        "tol": TOL,
        "status": "failed",
        "error": None,
        "violation": None,
    }
    t_start = time.time()
    try:
        ref = Worker("reference")
        cand = Worker("candidate")
        rec["isolation"] = cand.child.isolation
        q, k, v = draw(rng, shape)
        for w in (ref, cand):  # warm-up (lazy library init, BLAS buffers), not measured; the
            w.load(q, k, v)  # candidate's process before it imports attention.py
            for _ in range(2):
                w.run(b"B")
                w.run(b"G")
        st_pre = cand.status()
        anon_pre = st_pre["RssAnon"]
        cand.max_threads = st_pre["Threads"]
        cand.command(b"I")

        def rows_sample():
            r = rng.choice(T, size=min(T, ROWS_PER_HEAD), replace=False)
            return np.unique(np.concatenate([[0, T - 1], r]))

        # extra exactness checks: every row, inputs that stress a kernel
        checks = [
            ("normal", shape, "normal"),
            ("large logits", shape, "large"),
            ("near one-hot", shape, "onehot"),
            ("T - 37", (B, H, T - 37, D), "normal"),
            ("T = 61", (B, H, 61, D), "normal"),
            ("T = 1", (B, H, 1, D), "normal"),
        ]
        worst = 0.0
        for name, shp, kind in checks:
            cq, ck, cv = draw(rng, shp, kind)
            cand.load(cq, ck, cv)
            out = cand.run(b"A")[-1]
            cand.check_inputs()
            worst = max(
                worst,
                check_output(
                    out, cq, ck, cv, np.arange(shp[2]), f"check input '{name}', shape {shp}"
                ),
            )
        rec["full_checks"] = [c[0] for c in checks]

        cand_t, ref_t, gemm, load_excess = [], [], [], []
        for r in range(WARMUP_ROUNDS + TIMED_ROUNDS):
            q, k, v = draw(rng, shape)
            c0 = cand.cpu()
            _, load_peak = cand.load(q, k, v)
            fixed, fixed_peak = ref.load(q, k, v)
            res = {}
            for kind in (b"A", b"B") if r % 2 == 0 else (b"B", b"A"):
                res[kind] = (cand if kind == b"A" else ref).run(kind)
            res[b"G"] = ref.run(b"G")
            cand.check_inputs()
            fixed += ref.check_inputs()
            # every nanosecond of the candidate's process in the round, less the fixed code's
            charged = cand.cpu() - c0 - fixed
            worst = max(
                worst, check_output(res[b"A"][-1], q, k, v, rows_sample(), f"timed call {r}")
            )
            if r >= WARMUP_ROUNDS:
                _, w, hwm, rss, anon, _ = res[b"A"]
                cand_t.append((charged, w, hwm - rss + max(0, anon - anon_pre)))
                load_excess.append(max(0, load_peak - fixed_peak))
                c, w, hwm, rss, _, _ = res[b"B"]
                ref_t.append((c, w, hwm - rss))
                gemm.append(res[b"G"][0])
        for w in (cand, ref):
            w.command(b"D")
            w.child.close()
        # roofline time of the call: the causal FLOPs at the GEMM probe's rate of this round
        scale = causal_flops(*shape) / (2.0 * PROBE_N**3)
        frac = [g * scale / a[0] for a, g in zip(cand_t, gemm, strict=True)]
        ratio = [b[0] / a[0] for a, b in zip(cand_t, ref_t, strict=True)]
        wall_ratio = [b[1] / a[1] for a, b in zip(cand_t, ref_t, strict=True)]
        roof = [b[0] / (g * scale) for b, g in zip(ref_t, gemm, strict=True)]
        # memory the candidate's process took while loading, beyond what the same fixed code
        # took in the reference child, counts as if a call took it (the median: a load's peak
        # varies by a few pages, and work moved out of the call must be moved out every time)
        peak = max(max(a[2] for a in cand_t), int(np.median(load_excess)))
        rec.update(
            status="ok",
            roofline_fraction=float(np.median(frac)),
            roofline_fraction_iqr=[float(np.percentile(frac, 25)), float(np.percentile(frac, 75))],
            speedup=float(np.median(ratio)),
            speedup_iqr=[float(np.percentile(ratio, 25)), float(np.percentile(ratio, 75))],
            wall_speedup=float(np.median(wall_ratio)),
            max_speedup=float(np.median(roof)),
            mem_reduction=max(b[2] for b in ref_t) / max(peak, 4096),
            peak_mem_ratio=peak / out_bytes,
            peak_mem_bytes=int(peak),
            ref_peak_mem_bytes=int(max(b[2] for b in ref_t)),
            gflops_probe=float(2.0 * PROBE_N**3 / np.median(gemm)),
            cand_cpu_ms=[round(a[0] / 1e6, 3) for a in cand_t],
            ref_cpu_ms=[round(b[0] / 1e6, 3) for b in ref_t],
            gemm_cpu_ms=[round(g / 1e6, 3) for g in gemm],
            cand_mem_bytes=[int(a[2]) for a in cand_t],
            cand_load_excess_bytes=[int(x) for x in load_excess],
            max_rel_error=worst,
        )
    except RunFailure as e:
        msg = str(e)
        if msg.startswith("policy violation: "):
            rec["violation"] = msg[len("policy violation: ") :]
        rec["error"] = msg
    rec["wall_s"] = round(time.time() - t_start, 3)
    return rec
