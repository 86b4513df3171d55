"""The evaluation matrix: agents x tasks x seeds, run in parallel, recorded in the results store.

Every cell (one episode) runs in a fresh worker process of its own (``python -m
mlsbench_env.scale.matrix worker JOB RESULT``) with its own sandbox, so a crash, a leak or a kill
touches one cell only. Executors decide where that process runs:

- ``local``: up to ``workers`` processes on this machine;
- ``ray``: one Ray task per cell, with its CPU/GPU request, on a local Ray instance or a
  cluster (``address``); the Ray task starts the same worker process.

The driver alone writes the store: a finished cell is one row keyed by its cell key, so a rerun
skips it (resume) and nothing is recorded twice; a failed try (an exception, a killed worker, a
timeout) is an ``attempts`` row and is retried up to ``retries`` times, then recorded as failed
with its error. A worker whose driver dies stops itself (its sandbox with it).
"""

from __future__ import annotations

import hashlib
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
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mlsbench_env.errors import MLSBenchError, UnknownNameError
from mlsbench_env.scale.store import DEFAULT_PATH, ResultsStore

LOG_TAIL = 4000
RESERVED_OPTIONS = ("runs_dir", "work_dir", "agent_name")


# ---------------------------------------------------------------------------------- agents
@dataclass(frozen=True)
class AgentSpec:
    """An agent of the matrix: a task's baseline (``baseline:<name>``, ``strongest`` = the
    reference baseline) or an LLM agent (a YAML file, resolved into its config)."""

    source: str
    kind: Literal["baseline", "llm"]
    label: str
    baseline: str | None = None
    config: dict | None = None

    @cached_property
    def hash(self) -> str:
        """Identifies the agent's behaviour: the baseline name or the resolved config."""
        body = {"kind": self.kind, "baseline": self.baseline, "config": self.config}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def record(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "label": self.label,
            "baseline": self.baseline,
            "config": self.config,
        }


def agent_spec(source: str, overrides: tuple[str, ...] | list[str] = ()) -> AgentSpec:
    """Parse what a user names as an agent (``--set`` overrides apply to YAML agents)."""
    if source.startswith("baseline:"):
        name = source.split(":", 1)[1]
        if not name:
            raise MLSBenchError("baseline: needs a name, e.g. baseline:strongest")
        return AgentSpec(source, "baseline", source, baseline=name)
    if source.endswith((".yaml", ".yml")) or Path(source).is_file():
        from mlsbench_env.agent import load_config

        cfg = load_config(source, overrides)
        return AgentSpec(source, "llm", cfg.name, config=cfg.model_dump(mode="json"))
    raise MLSBenchError(
        f"unknown agent {source!r}; expected baseline:<name> (default, strongest, or one of a "
        "task's baselines) or an agent YAML file (e.g. agents/openai.yaml)"
    )


def baseline_name(task, name: str) -> str:
    return task.spec.reference_baseline if name in ("strongest", "reference") else name


# ---------------------------------------------------------------------------------- tasks
def suites_dir() -> Path:
    """The shipped suites: package data when installed, the repo's suites/ when editable."""
    packaged = Path(str(resources.files("mlsbench_env"))) / "suites"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "suites"


def suite_names() -> list[str]:
    d = suites_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_suite(name: str) -> list[str]:
    """The task ids of a suite: a shipped suite name (``lite``) or a suite YAML file."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else suites_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError("suite", name, suite_names(), "Or give a suite YAML file.")
    data = yaml.safe_load(path.read_text()) or {}
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise MLSBenchError(f"{path}: expected `tasks:` with a list of task ids")
    return tasks


def resolve_tasks(names: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(task ids or folders, warnings): ``all`` = every shipped task that loads, a suite name
    (``lite``) or file, task ids, task folders; comma-separated lists are split."""
    from mlsbench_env.spec import builtin_task_ids, load_task

    out, warnings = [], []
    for item in [n for name in names for n in name.split(",") if n]:
        if item == "all":
            for tid in builtin_task_ids():
                try:
                    load_task(tid)
                    out.append(tid)
                except MLSBenchError as e:
                    warnings.append(f"skipping {tid} (does not load): {e}")
        elif item in suite_names() or item.endswith((".yaml", ".yml")):
            out += load_suite(item)
        else:
            out.append(item)
    return list(dict.fromkeys(out)), warnings


# ---------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One episode of the matrix."""

    task: str  # id or folder, as given
    task_id: str
    task_version: int
    domain: str
    agent: AgentSpec
    seed: int
    options: tuple[tuple[str, Any], ...] = ()  # env options, sorted

    @cached_property
    def key(self) -> str:
        """Same task id and version, agent config, seed and env options: same cell."""
        body = [self.task_id, self.task_version, self.agent.hash, self.seed, self.options]
        return hashlib.sha256(json.dumps(body, default=str).encode()).hexdigest()[:20]

    @property
    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def options_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.options, default=str).encode()).hexdigest()[:12]

    def record(self) -> dict:
        return {
            "task": self.task,
            "task_id": self.task_id,
            "task_version": self.task_version,
            "domain": self.domain,
            "agent": self.agent.record(),
            "seed": self.seed,
            "options": [list(o) for o in self.options],
        }

    @classmethod
    def from_record(cls, d: dict) -> Cell:
        a = d["agent"]
        return cls(
            d["task"],
            d["task_id"],
            d["task_version"],
            d["domain"],
            AgentSpec(a["source"], a["kind"], a["label"], a["baseline"], a["config"]),
            d["seed"],
            tuple((k, _freeze(v)) for k, v in d["options"]),
        )

    def describe(self) -> str:
        return f"{self.task_id} x {self.agent.label} x seed {self.seed}"


def _freeze(v):
    return tuple(_freeze(x) for x in v) if isinstance(v, list | tuple) else v


class EvalConfig(BaseModel):
    """An evaluation matrix and how to run it (``mlsbench eval``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: tuple[str, ...] = Field(min_length=1, description="baseline:<name> or agent YAMLs.")
    tasks: tuple[str, ...] = Field(min_length=1, description="all | a suite | ids | folders.")
    seeds: tuple[int, ...] = Field((0,), min_length=1, description="Episode seeds.")
    workers: int = Field(1, ge=1, description="Episodes at once.")
    executor: Literal["local", "ray"] = Field("local", description="local | ray.")
    address: str | None = Field(
        None, description="Ray: a cluster (ray://host:10001, auto); default a local instance."
    )
    retries: int = Field(1, ge=0, description="Tries after a failed one, per cell.")
    retry_failed: bool = Field(True, description="Run cells a previous eval recorded as failed.")
    cell_timeout_s: float | None = Field(None, gt=0, description="Kill an episode after this.")
    store: str = Field(DEFAULT_PATH, description="The SQLite results store.")
    runs_dir: str = Field("runs", description="Trajectories (and the eval's scratch) go here.")
    env: dict[str, Any] = Field(
        default_factory=dict,
        description="Env options of every episode (final_seeds, test_budget, sandbox, ...).",
    )
    overrides: tuple[str, ...] = Field((), description="--set for every YAML agent.")
    score_unsubmitted: bool = Field(
        True,
        description="An episode its agent leaves without submitting (a limit, model or format "
        "errors, a crash) or a budget ends still gets the final evaluation, so every cell has a "
        "score; its exit_status says it was not submitted.",
    )
    cpus_per_episode: float = Field(1.0, gt=0, description="Ray CPU request per episode.")
    gpus_per_episode: float = Field(0.0, ge=0, description="GPUs per episode.")


def expand(cfg: EvalConfig) -> tuple[list[Cell], list[str]]:
    """The matrix's cells (task-major) and warnings; checks names before anything runs."""
    from mlsbench_env.env import EnvConfig
    from mlsbench_env.spec import load_task

    bad = [k for k in cfg.env if k in RESERVED_OPTIONS]
    if bad:
        raise MLSBenchError(f"env options {bad} are set by the matrix; use --runs-dir instead")
    defaults = EnvConfig().model_dump()
    EnvConfig(**cfg.env)  # a misspelt option is an error naming it
    # only options that differ from the defaults: `--sandbox local` is the same cell as none
    options = tuple(
        sorted(
            (k, _freeze(v))
            for k, v in cfg.env.items()
            if v is not None and _freeze(v) != _freeze(defaults.get(k))
        )
    )
    agents = [agent_spec(a, cfg.overrides) for a in cfg.agents]
    task_names, warnings = resolve_tasks(cfg.tasks)
    cells: dict[str, Cell] = {}
    for name in task_names:
        task = load_task(name)
        for a in agents:
            if a.kind == "baseline":
                task.baseline_regions(baseline_name(task, a.baseline))  # unknown: an error
        for a in agents:
            for seed in cfg.seeds:
                c = Cell(name, task.id, task.spec.version, task.spec.domain, a, seed, options)
                cells.setdefault(c.key, c)  # the same agent or task named twice runs once
    return list(cells.values()), warnings


# ---------------------------------------------------------------------------------- one cell
def run_cell(
    cell: Cell,
    runs_dir: str,
    work_dir: str,
    state: Path | None = None,
    score_unsubmitted: bool = True,
) -> dict:
    """Play the cell's episode in this process; the store row of its result."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.episode import BaselineAgent, run_episode
    from mlsbench_env.spec import load_task

    started = time.time()
    task = load_task(cell.task)
    opts = {**cell.options_dict, "runs_dir": runs_dir, "work_dir": work_dir}
    opts["agent_name"] = "".join(c if c.isalnum() or c in "-_." else "-" for c in cell.agent.label)
    if score_unsubmitted:  # a harness policy, like retries: not part of the cell's key
        opts.setdefault("submit_on_truncation", True)
    noted: list = []

    def note(*_):  # the run folder is known after reset: tell the driver (progress, kills)
        if state is not None and not noted and env.run_dir:
            noted.append(1)
            _write_json(
                state,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "trajectory": str(env.run_dir),
                    "started": started,
                },
            )

    model = None
    if cell.agent.kind == "baseline":
        env = ResearchEnv(task, **opts)
        agent = BaselineAgent(task, baseline_name(task, cell.agent.baseline))
        try:
            result = run_episode(env, agent, seed=cell.seed, on_step=note)
        finally:
            env.close()
    else:
        from mlsbench_env.agent import LLMAgent, load_config, make_model

        cfg = load_config(cell.agent.config)
        opts.setdefault("obs_max_tokens", cfg.context.obs_max_tokens)
        if cfg.tools:
            opts.setdefault("tools", cfg.tools)
        env = ResearchEnv(task, **opts)
        llm = make_model(cfg.model, cfg.retry)
        model = llm.name
        try:
            agent = LLMAgent(cfg, llm, on_step=note, score_unsubmitted=score_unsubmitted)
            result = agent.run(env, seed=cell.seed)
        finally:
            env.close()
    image = image_digest(cell.options_dict.get("sandbox", "local"))
    return episode_row(cell, task, result, result.status, result.totals, model, image, started)


def image_digest(sandbox: str) -> str | None:
    """``tag@image id`` of the docker backend's sandbox image (None for local sandboxes)."""
    if sandbox != "docker":
        return None
    try:
        from mlsbench_env.sandbox import docker

        tag = docker.resolve_image(docker.DockerOptions.from_env())
        return f"{tag}@{docker.client().api.inspect_image(tag)['Id']}"
    except Exception:  # no engine, or an image built elsewhere: the row says unknown
        return None


def episode_row(cell, task, result, exit_status, totals, model, image, started) -> dict:
    """The store row of a finished episode (read back from its trajectory where needed)."""
    from mlsbench_env.env.log import read_log

    info = result.final_info
    records = read_log(Path(result.run_dir) / "trajectory.jsonl") if result.run_dir else []
    header = next((r for r in records if r.get("type") == "header"), {})
    end = next((r for r in records if r.get("type") == "end"), {})
    reset = next((r for r in records if r.get("type") == "reset"), {})
    steps = [r for r in records if r.get("type") == "step"]
    curve = [
        [s["step"], s["info"]["score"]]
        for s in steps
        if s.get("tool") == "test" and (s.get("info") or {}).get("score") is not None
    ]
    # compute seconds: what the episode's commands used of the budget + the final evaluation
    budget0 = cell.options_dict.get("compute_budget_s") or task.spec.budgets.compute_s
    left = (info.get("budget") or {}).get("compute_s_left", budget0)
    final_s = sum(r.get("wall_s", 0.0) for r in info.get("final_runs") or [])
    tamper = info.get("tamper_report") or end.get("tamper_report") or []
    reason = info.get("reason")
    if result.score is None and reason is None:
        reason = f"no final evaluation (exit status {exit_status})"
    t = totals
    return {
        "cell_key": cell.key,
        "status": "ok",
        "task": cell.task_id,
        "task_version": cell.task_version,
        "domain": cell.domain,
        "agent": cell.agent.label,
        "agent_hash": cell.agent.hash,
        "agent_kind": cell.agent.kind,
        "agent_source": cell.agent.source,
        "agent_config": cell.agent.config,
        "model": model,
        "seed": cell.seed,
        "options": cell.options_dict,
        "options_hash": cell.options_hash,
        "exit_status": exit_status,
        "score": result.score,
        "score_reason": reason,
        "score_spread": result.score_spread,
        "vanilla_score": result.vanilla_score,
        "medal": info.get("medal"),
        "task_kind": task.spec.kind,
        "setting_scores": info.get("setting_scores"),
        "seed_scores": info.get("seed_scores"),
        "score_curve": curve,
        "reward": result.reward,
        "steps": result.steps,
        "tests_used": end.get("tests_used", len(curve)),
        "model_calls": t["model_calls"] if t else 0,
        "input_tokens": (t["input_tokens"] + t["cached_input_tokens"]) if t else 0,
        "cached_input_tokens": t["cached_input_tokens"] if t else 0,
        "output_tokens": t["output_tokens"] if t else 0,
        "tokens_estimated": bool(t and t["estimated"]),
        "cost_usd": t["cost_usd"] if t else 0.0,
        "wall_s": time.time() - started,
        "compute_s": max(budget0 - left, 0.0) + final_s,
        "tamper_events": len(tamper),
        "tamper_report": tamper,
        "task_hash": header.get("task_hash") or task.content_hash(),
        "anchors_hash": header.get("anchors_hash"),
        "sandbox": cell.options_dict.get("sandbox", "local"),
        "isolation": reset.get("isolation"),
        "agent_isolation": reset.get("agent_isolation"),
        "image_digest": image,
        "versions": header.get("versions"),
        "git_revision": header.get("git_revision"),
        "host": socket.gethostname(),
        "trajectory": result.run_dir,
        "started": started,
        "finished": time.time(),
    }


def failed_row(cell: Cell, error: str, attempts: int) -> dict:
    return {
        "cell_key": cell.key,
        "status": "failed",
        "task": cell.task_id,
        "task_version": cell.task_version,
        "domain": cell.domain,
        "agent": cell.agent.label,
        "agent_hash": cell.agent.hash,
        "agent_kind": cell.agent.kind,
        "agent_source": cell.agent.source,
        "agent_config": cell.agent.config,
        "seed": cell.seed,
        "options": cell.options_dict,
        "options_hash": cell.options_hash,
        "error": error,
        "attempts": attempts,
        "host": socket.gethostname(),
        "finished": time.time(),
    }


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


# ---------------------------------------------------------------------------------- workers
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
    with open(folder / f"{name}.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlsbench_env.scale.matrix",
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


# ---------------------------------------------------------------------------------- the driver
@dataclass
class Event:
    """What the driver tells ``on_event``: start | done | retry | failed | skip | tick."""

    kind: str
    cell: Cell | None = None
    row: dict | None = None
    error: str | None = None
    attempt: int = 0


@dataclass
class EvalSummary:
    eval_id: str
    cells: int
    skipped: int
    done: int
    failed: int
    retried: int
    wall_s: float
    warnings: list[str] = field(default_factory=list)


def run_eval(
    cfg: EvalConfig,
    *,
    store: ResultsStore | None = None,
    on_event: Callable[[Event], None] | None = None,
    executor=None,
) -> EvalSummary:
    """Run every cell of the matrix that the store does not hold finished yet."""
    started = time.time()
    emit = on_event or (lambda e: None)
    cells, warnings = expand(cfg)
    store = store or ResultsStore(cfg.store)
    have = store.statuses(c.key for c in cells)
    done_before = {"ok"} | (set() if cfg.retry_failed else {"failed"})
    todo = [c for c in cells if have.get(c.key) not in done_before]
    for c in cells:
        if have.get(c.key) in done_before:
            emit(Event("skip", c))
    eval_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    summary = EvalSummary(eval_id, len(cells), len(cells) - len(todo), 0, 0, 0, 0.0, warnings)
    if not todo:
        return summary
    store.begin_eval(eval_id, cfg.model_dump(mode="json"))
    runs_dir = str(Path(cfg.runs_dir).resolve())
    scratch = Path(runs_dir) / ".matrix" / eval_id
    # every episode of this eval shares one work root, which each sandbox hides entirely
    work_dir = tempfile.mkdtemp(prefix=f"mlsbench-eval-{eval_id}-")
    if executor is None:
        if cfg.executor == "ray":
            executor = RayExecutor(
                cfg.workers,
                address=cfg.address,
                cpus=cfg.cpus_per_episode,
                gpus=cfg.gpus_per_episode,
                timeout_s=cfg.cell_timeout_s,
            )
        else:
            executor = LocalExecutor(cfg.workers, cfg.cell_timeout_s, cfg.gpus_per_episode)
    pending = deque((c, 1) for c in todo)
    try:
        while pending or executor.busy:
            while pending and executor.free > 0:
                cell, attempt = pending.popleft()
                job = Job(cell, attempt, runs_dir, work_dir, scratch, cfg.score_unsubmitted)
                executor.submit(job)
                emit(Event("start", cell, attempt=attempt))
            for out in executor.poll(0.5):
                _settle(out, cfg, store, eval_id, executor.name, pending, summary, emit)
            emit(Event("tick"))
    finally:
        executor.close()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(work_dir, ignore_errors=True)
    summary.wall_s = time.time() - started
    return summary


def _settle(out: Outcome, cfg, store, eval_id, executor, pending, summary, emit) -> None:
    cell, attempt = out.job.cell, out.job.attempt
    common = dict(eval_id=eval_id, pid=out.pid, started=out.started)
    if out.ok:
        row = {**out.row, "eval_id": eval_id, "executor": executor, "attempts": attempt}
        store.record_attempt(cell.key, attempt, "ok", trajectory=row.get("trajectory"), **common)
        store.record_episode(row)
        summary.done += 1
        emit(Event("done", cell, row=row, attempt=attempt))
        return
    store.record_attempt(
        cell.key, attempt, "failed", error=out.error, trajectory=out.trajectory, **common
    )
    if attempt <= cfg.retries:
        summary.retried += 1
        pending.append((cell, attempt + 1))
        emit(Event("retry", cell, error=out.error, attempt=attempt))
    else:
        store.record_episode(failed_row(cell, out.error or "unknown error", attempt))
        summary.failed += 1
        emit(Event("failed", cell, error=out.error, attempt=attempt))


# ---------------------------------------------------------------------------------- progress
class MatrixProgress:
    """Live counts for the terminal: cells done / running / failed, ETA, cost so far.
    A rich renderable (``rich.live.Live(progress)``); ``update`` takes the driver's events."""

    def __init__(self, total: int, workers: int):
        self.total, self.workers = total, workers
        self.done = self.failed = self.skipped = self.retries = 0
        self.running: dict[str, float] = {}
        self.durations: list[float] = []
        self.cost = 0.0
        self.started = time.time()
        self.last: deque[str] = deque(maxlen=6)

    def update(self, e: Event) -> str | None:
        """Apply an event; returns a line worth printing (a finished or failed cell)."""
        key = e.cell.key if e.cell else None
        if e.kind == "skip":
            self.skipped += 1
        elif e.kind == "start":
            self.running[key] = time.time()
        elif e.kind in ("done", "retry", "failed"):
            began = self.running.pop(key, None)
            if e.kind == "done":
                self.done += 1
                self.cost += e.row.get("cost_usd") or 0.0
                if began:
                    self.durations.append(time.time() - began)
                s = e.row.get("score")
                line = f"done    {e.cell.describe()}: score {'n/a' if s is None else f'{s:.1f}'}"
            elif e.kind == "retry":
                self.retries += 1
                first = (e.error or "").splitlines()[0] if e.error else ""
                line = f"retry   {e.cell.describe()} (attempt {e.attempt} failed: {first})"
            else:
                self.failed += 1
                first = (e.error or "").splitlines()[0] if e.error else ""
                line = f"FAILED  {e.cell.describe()}: {first}"
            self.last.append(line)
            return line
        return None

    @property
    def eta_s(self) -> float | None:
        left = self.total - self.skipped - self.done - self.failed
        if not self.durations or left <= 0:
            return None if left > 0 else 0.0
        mean = sum(self.durations) / len(self.durations)
        return mean * left / max(1, min(self.workers, left))

    def line(self) -> str:
        eta = self.eta_s
        return (
            f"{self.done + self.skipped}/{self.total} done ({self.skipped} from before), "
            f"{len(self.running)} running, {self.failed} failed, {self.retries} retried | "
            f"elapsed {_dur(time.time() - self.started)} | ETA "
            f"{'?' if eta is None else _dur(eta)} | cost ${self.cost:.2f}"
        )

    def __rich__(self):
        from rich.console import Group
        from rich.text import Text

        return Group(*[Text(x, style="dim") for x in self.last], Text(self.line(), style="bold"))


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


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
    _write_json(state, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    try:
        cell = Cell.from_record(job["cell"])
        score = job.get("score_unsubmitted", True)
        row = run_cell(cell, job["runs_dir"], job["work_dir"], state, score)
    except Exception as e:
        _write_json(
            Path(result_path),
            {"error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"},
        )
        return 1
    _write_json(Path(result_path), {"row": row})
    return 0


if __name__ == "__main__":  # pragma: no cover (run as a subprocess by the executors)
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m mlsbench_env.scale.matrix worker JOB.json RESULT.json")
