"""Where a matrix cell's worker process runs, and the worker itself.

Every cell runs in a fresh process (``python -m mlsbench_env.scale.executors worker JOB RESULT``)
with its own sandbox, in its own process group, so a crash, a leak or a kill touches one cell.

- ``LocalExecutor``: up to ``workers`` such processes on this machine, GPUs handed out per cell;
- ``RayExecutor``: one Ray task per cell, with its CPU/GPU request, on a local Ray instance or a
  cluster (``address``); the Ray task starts the same worker process.

A worker whose driver dies stops itself (its sandbox with it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlsbench_env.errors import MLSBenchError
from mlsbench_env.scale.rows import run_cell, write_json

if TYPE_CHECKING:
    from mlsbench_env.scale.matrix import Cell

LOG_TAIL = 4000


@dataclass
class Job:
    cell: Cell
    attempt: int
    runs_dir: str
    work_dir: str
    scratch: Path
    score_unsubmitted: bool = True

    @property
    def name(self) -> str:
        return f"{self.cell.key}-{self.attempt}"

    def record(self) -> dict:
        return {
            "cell": self.cell.record(),
            "attempt": self.attempt,
            "runs_dir": self.runs_dir,
            "work_dir": self.work_dir,
            "state": str(self.scratch / "running" / self.name),
            "score_unsubmitted": self.score_unsubmitted,
        }


@dataclass
class Outcome:
    job: Job
    row: dict | None = None
    error: str | None = None
    pid: int | None = None
    trajectory: str | None = None
    started: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.row is not None


def _spawn(job: dict, folder: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    """Start the worker process of a job; (process, result path). Its output goes to a log."""
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(job["state"]).name
    Path(job["state"]).parent.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.job.json").write_text(json.dumps(job, default=str))
    result = folder / f"{name}.result.json"
    with (folder / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlsbench_env.scale.executors",
                "worker",
                str(folder / f"{name}.job.json"),
                str(result),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a timeout kills all of it
            env={**os.environ, **(env or {})},
        )
    return proc, result


def _collect(proc: subprocess.Popen, result: Path, folder: Path) -> tuple[dict | None, str | None]:
    """(row, None) or (None, error) of a finished worker process."""
    name = result.name.removesuffix(".result.json")
    log = folder / f"{name}.log"
    tail = log.read_text(errors="replace")[-LOG_TAIL:] if log.is_file() else ""
    data = json.loads(result.read_text()) if result.is_file() else {}
    if proc.returncode == 0 and "row" in data:
        return data["row"], None
    if proc.returncode is not None and proc.returncode < 0:
        why = f"worker killed by signal {-proc.returncode}"
    else:
        why = data.get("error") or f"worker exited with status {proc.returncode}"
    return None, why + (f"\n--- worker log tail ---\n{tail}" if tail.strip() else "")


def _kill(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the worker's process group (it closes its env), SIGKILL after ``grace_s``."""
    # by hand: Popen.terminate/kill signal the worker alone, not the commands its episode
    # started in the group, and the stdlib has no "TERM the group, KILL it after a grace"
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class LocalExecutor:
    """Up to ``workers`` worker processes on this machine; GPUs (``gpus_per_episode``) are
    handed out from CUDA_VISIBLE_DEVICES / nvidia-smi, one set per running episode."""

    name = "local"

    def __init__(self, workers: int, timeout_s: float | None = None, gpus_per_episode: float = 0):
        self.workers, self.timeout_s = workers, timeout_s
        self._running: dict[str, tuple[Job, subprocess.Popen, Path, float, list[str]]] = {}
        self._gpus_each = int(gpus_per_episode + 0.999)
        self._free_gpus = _visible_gpus() if self._gpus_each else []
        if self._gpus_each and len(self._free_gpus) < self._gpus_each:
            raise MLSBenchError(
                f"{self._gpus_each} GPU(s) per episode asked, {len(self._free_gpus)} visible"
            )

    @property
    def free(self) -> int:
        slots = self.workers - len(self._running)
        if self._gpus_each:
            slots = min(slots, len(self._free_gpus) // self._gpus_each)
        return slots

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def submit(self, job: Job) -> None:
        gpus = [self._free_gpus.pop(0) for _ in range(self._gpus_each)]
        # the worker sees only its GPUs (CUDA, and the sandboxes' own GPU allocator)
        ids = ",".join(gpus)
        env = {"CUDA_VISIBLE_DEVICES": ids, "MLSBENCH_GPUS": ids} if self._gpus_each else None
        folder = job.scratch / "jobs"
        proc, result = _spawn(job.record(), folder, env)
        self._running[job.name] = (job, proc, result, time.time(), gpus)

    def poll(self, timeout: float) -> list[Outcome]:
        deadline = time.time() + timeout
        while True:
            out = []
            for name, (job, proc, result, started, gpus) in list(self._running.items()):
                late = self.timeout_s and time.time() - started > self.timeout_s
                if proc.poll() is None and not late:
                    continue
                if late and proc.poll() is None:
                    _kill(proc)
                state = _read_state(job, remove=True)
                row, error = _collect(proc, result, job.scratch / "jobs")
                if late and row is None:
                    error = f"cell timed out after {self.timeout_s:.0f} s\n{error}"
                out.append(Outcome(job, row, error, proc.pid, state.get("trajectory"), started))
                self._free_gpus += gpus
                del self._running[name]
            if out or time.time() >= deadline:
                return out
            time.sleep(0.05)

    def running_pids(self) -> list[int]:
        return [proc.pid for _, proc, *_ in self._running.values()]

    def close(self) -> None:
        for _, proc, *_ in list(self._running.values()):
            _kill(proc, grace_s=3.0)
        self._running.clear()


def _visible_gpus() -> list[str]:
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


def _read_state(job: Job, remove: bool = False) -> dict:
    path = job.scratch / "running" / job.name
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    finally:
        if remove:
            path.unlink(missing_ok=True)


def ray_cell(job: dict, timeout_s: float | None) -> dict:
    """A Ray task: run the job's worker process here; its row, or raise with its error."""
    scratch = Path(tempfile.mkdtemp(prefix="mlsbench-ray-"))
    if not Path(job["state"]).parent.is_dir():  # a remote node: no shared scratch folder
        job = {**job, "state": str(scratch / "running" / Path(job["state"]).name)}
    try:
        proc, result = _spawn(job, scratch)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise RuntimeError(f"cell timed out after {timeout_s:.0f} s") from None
        finally:
            if proc.poll() is None:  # the Ray task was cancelled
                _kill(proc, grace_s=3.0)
        row, error = _collect(proc, result, scratch)
        if row is None:
            raise RuntimeError(error)
        return row
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class RayExecutor:
    """One Ray task per cell (``num_cpus``/``num_gpus`` per episode) on a local Ray instance
    bound to 127.0.0.1 (default) or the cluster at ``address``; usage stats off."""

    name = "ray"

    def __init__(
        self,
        workers: int | None,
        *,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        timeout_s: float | None = None,
    ):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError as e:
            raise MLSBenchError(
                f"the ray executor needs Ray ({e}); install it with: pip install "
                "'mlsbench-env[scale]'"
            ) from None
        self._ray, self._owned = ray, False
        if not ray.is_initialized():
            if address in (None, "local"):
                ray.init(
                    address="local",
                    num_cpus=max(1, int((workers or 1) * cpus + 0.999)),
                    num_gpus=int((workers or 1) * gpus + 0.999) or None,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            self._owned = True
        total = ray.cluster_resources().get("CPU", 1.0)
        self.workers = workers or max(1, int(total // cpus))
        self._fn = ray.remote(ray_cell).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        self.timeout_s = timeout_s
        self._refs: dict = {}

    @property
    def free(self) -> int:
        return self.workers - len(self._refs)

    @property
    def busy(self) -> bool:
        return bool(self._refs)

    def submit(self, job: Job) -> None:
        # on this machine the worker reports into the driver's scratch (pid, trajectory)
        (job.scratch / "running").mkdir(parents=True, exist_ok=True)
        self._refs[self._fn.remote(job.record(), self.timeout_s)] = (job, time.time())

    def poll(self, timeout: float) -> list[Outcome]:
        if not self._refs:
            time.sleep(min(timeout, 0.05))
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # and whatever else is ready already
            ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        out = []
        for ref in ready:
            job, started = self._refs.pop(ref)
            state = _read_state(job)
            try:
                out.append(Outcome(job, self._ray.get(ref), None, None, None, started))
            except Exception as e:  # a RayTaskError (the cell's error) or a dead worker
                cause = getattr(e, "cause", None)
                msg = str(cause) if isinstance(cause, RuntimeError) else f"{type(e).__name__}: {e}"
                out.append(
                    Outcome(job, None, msg, state.get("pid"), state.get("trajectory"), started)
                )
        return out

    def close(self) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                pass
        self._refs.clear()
        if self._owned:
            self._ray.shutdown()


# ---------------------------------------------------------------------------------- the worker
def _worker_main(job_path: str, result_path: str) -> int:
    """Entry of a worker process: run one cell, write ``{"row": ...}`` or ``{"error": ...}``."""
    parent = os.getppid()

    def stop(signum, frame):  # unwinds through `finally`: the env closes its sandbox
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)

    def watchdog():  # the driver died (killed, crashed): stop instead of running on alone
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()
    job = json.loads(Path(job_path).read_text())
    state = Path(job["state"])
    state.parent.mkdir(parents=True, exist_ok=True)
    write_json(state, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    from mlsbench_env.scale.matrix import Cell

    try:
        cell = Cell.from_record(job["cell"])
        score = job.get("score_unsubmitted", True)
        row = run_cell(cell, job["runs_dir"], job["work_dir"], state, score)
    except Exception as e:
        write_json(
            Path(result_path),
            {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"},
        )
        return 1
    write_json(Path(result_path), {"row": row})
    return 0


if __name__ == "__main__":  # pragma: no cover (run as a subprocess by the executors)
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m mlsbench_env.scale.executors worker JOB.json RESULT.json")
