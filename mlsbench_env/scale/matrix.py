"""The evaluation matrix: agents x tasks x seeds, planned into cells and run in parallel into
the results store.

``expand`` turns an ``EvalConfig`` into cells (checking every name before anything runs);
``run_eval`` hands the cells the store does not hold finished to an executor (``executors``:
one fresh worker process per cell, locally or on Ray) and records what comes back.

The driver alone writes the store: a finished cell is one row keyed by its cell key, so a rerun
skips it (resume) and nothing is recorded twice; a failed try (an exception, a killed worker, a
timeout) is an ``attempts`` row and is retried up to ``retries`` times, then recorded as failed
with its error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mlsbench_env.errors import MLSBenchError, UnknownNameError
from mlsbench_env.scale.executors import Job, LocalExecutor, Outcome, RayExecutor
from mlsbench_env.scale.rows import failed_row
from mlsbench_env.scale.store import DEFAULT_PATH, ResultsStore

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
        return asdict(self)


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
        # unset keys added later (protocol) stay out: an agent's hash and cells stay as they were
        config = cfg.model_dump(mode="json", exclude={"protocol"} if cfg.protocol is None else None)
        return AgentSpec(source, "llm", cfg.name, config=config)
    raise MLSBenchError(
        f"unknown agent {source!r}; expected baseline:<name> (default, strongest, or one of a "
        "task's baselines) or an agent YAML file (e.g. agents/openai.yaml)"
    )


def baseline_name(task, name: str | None) -> str:
    if name is None:
        raise MLSBenchError("a baseline agent needs a name, e.g. baseline:strongest")
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
        return {**asdict(self), "options": [list(o) for o in self.options]}

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


# ---------------------------------------------------------------------------------- the driver
@dataclass
class Event:
    """What the driver tells ``on_event``."""

    kind: Literal["start", "done", "retry", "failed", "skip", "tick"]
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
    if out.row is not None:
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
