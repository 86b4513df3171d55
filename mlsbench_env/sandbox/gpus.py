"""GPUs for sandboxes: which exist, which episode holds which, and what they did.

A GPU is held through an exclusive ``flock`` on one file per GPU, so concurrent episodes get
distinct ids whether they live in one process or in many on the same host (vector envs, Ray
workers), and a holder that crashes releases its GPUs with its file descriptors. The compute
budget is charged in GPU-seconds (wall x GPUs; see ``ExecResult.compute_s``).

Discovery: ``MLSBENCH_GPUS`` ("0,1", or "none") overrides; otherwise ``nvidia-smi``. Where no
NVIDIA GPU exists this module says so once (``describe()``, logged on first use), GPU episodes
are refused with that reason, and CPU episodes work as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from mlsbench_env.errors import SandboxError

log = logging.getLogger("mlsbench.sandbox")
SMI_QUERY = ["--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


@cache
def discover() -> tuple[tuple[str, ...], str]:
    """(GPU ids on this host, how they were found or why there are none); checked once."""
    forced = os.environ.get("MLSBENCH_GPUS")
    if forced is not None:
        ids = tuple(g.strip() for g in forced.split(",") if g.strip() and g.strip() != "none")
        return ids, "MLSBENCH_GPUS"
    smi = shutil.which("nvidia-smi")
    if not smi:
        return (), "nvidia-smi is not on PATH"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return (), f"nvidia-smi failed: {e}"
    if out.returncode != 0:
        return (), f"nvidia-smi failed: {(out.stderr or out.stdout).strip()[:200]}"
    ids = tuple(line.strip() for line in out.stdout.splitlines() if line.strip())
    return ids, "nvidia-smi" if ids else "nvidia-smi lists no GPU"


def describe() -> str:
    """One line on this host's GPUs, for logs and `mlsbench sandbox info`."""
    ids, how = discover()
    if ids:
        return f"GPUs: {len(ids)} ({', '.join(ids)}; from {how}); compute is charged wall x GPUs"
    return (
        f"GPUs: none on this host ({how}): sandboxes with gpus>0 are refused, GPU utilization "
        "is not recorded, and compute is charged in CPU wall-seconds"
    )


@cache
def announce() -> None:
    """Say once per process what GPUs there are (the 'none' case included)."""
    log.info("mlsbench: %s", describe())


def default_lock_dir() -> Path:
    return Path(os.environ.get("MLSBENCH_GPU_LOCKS", Path(tempfile.gettempdir()) / "mlsbench-gpus"))


class GpuLease:
    """Distinct GPU ids held until ``release()`` (or until the process ends)."""

    def __init__(self, ids: list[str], files: list):
        self.ids = ids
        self._files = files

    def release(self) -> None:
        for f in self._files:
            try:
                fcntl.flock(f, fcntl.LOCK_UN)
            finally:
                f.close()
        self._files = []

    def __del__(self):
        self.release()


class GpuAllocator:
    """Hands out distinct GPU ids; ``gpus`` and ``lock_dir`` default to this host's."""

    def __init__(self, gpus: list[str] | None = None, lock_dir: Path | None = None):
        self.gpus = list(discover()[0] if gpus is None else gpus)
        self.lock_dir = Path(lock_dir or default_lock_dir())

    def acquire(self, n: int) -> GpuLease:
        if n <= 0:
            return GpuLease([], [])
        if not self.gpus:
            raise SandboxError(f"{n} GPU(s) requested, but {describe()}; use gpus=0")
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        got_ids, files = [], []
        for gpu in self.gpus:
            f = (self.lock_dir / f"gpu-{gpu}.lock").open("a+")  # noqa: SIM115 (held by the lease)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            got_ids.append(gpu)
            files.append(f)
            if len(got_ids) == n:
                return GpuLease(got_ids, files)
        GpuLease(got_ids, files).release()
        raise SandboxError(
            f"{n} GPU(s) requested, but only {len(got_ids)} of the {len(self.gpus)} GPUs of this "
            "host are free (others are held by running episodes); wait, or lower gpus"
        )


def parse_smi(text: str) -> dict[str, tuple[float, float]]:
    """nvidia-smi's ``index, utilization %, memory MiB`` CSV lines -> {index: (util, mem)}."""
    out = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            out[parts[0]] = (float(parts[1]), float(parts[2]))
        except ValueError:  # "[N/A]" on some boards
            continue
    return out


def _query_smi(ids: list[str]) -> str:
    smi = shutil.which("nvidia-smi") or "nvidia-smi"
    out = subprocess.run(
        [smi, *SMI_QUERY, "-i", ",".join(ids)], capture_output=True, text=True, timeout=10
    )
    return out.stdout


class GpuSampler:
    """Samples utilization and memory of some GPUs while a command runs (a context manager).

    ``mean_util`` is the mean over samples and GPUs; ``peak_mem_mb`` the largest sum over the
    GPUs of one sample. Both stay None where nothing could be sampled."""

    def __init__(self, ids: list[str], interval_s: float = 1.0, query: Callable | None = None):
        self.ids, self.interval_s = ids, interval_s
        self.query = query or _query_smi
        self.samples: list[dict[str, tuple[float, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        try:
            got = parse_smi(self.query(self.ids))
        except (OSError, subprocess.SubprocessError):
            return
        if got:
            self.samples.append(got)

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # short commands get at least one sample after they ran

    @property
    def mean_util(self) -> float | None:
        vals = [u for s in self.samples for u, _ in s.values()]
        return statistics.fmean(vals) if vals else None

    @property
    def peak_mem_mb(self) -> float | None:
        sums = [sum(m for _, m in s.values()) for s in self.samples]
        return max(sums) if sums else None
