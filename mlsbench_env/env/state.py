"""One episode's state: what the tool handlers read and change, and its snapshots.

``EpisodeState`` holds everything that belongs to the episode in play (workspace, sandbox,
budgets, tests, events, background jobs, the trajectory log); ``ResearchEnv`` owns one per
reset. ``EpisodeSnapshot`` is a deep copy of it that ``restore`` puts back, any number of
times, into any env of the same task (tree search, branching rollouts)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsbench_env.env.config import EnvConfig
from mlsbench_env.env.log import TrajectoryLog
from mlsbench_env.env.protocol import Protocol, get_protocol
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import SettingRun
from mlsbench_env.sandbox.visibility import hidden_runs
from mlsbench_env.spec import Task
from mlsbench_env.tools.jobs import Slots, TestJob
from mlsbench_env.workspace import Workspace, WorkspaceState


@dataclass
class Budget:
    """What is left. ``compute_s`` is infinite under a protocol without a compute budget;
    ``actions`` (all actions) is counted only where the protocol counts some tools as steps."""

    steps: int
    tests: int
    compute_s: float
    actions: int | None = None

    def as_dict(self) -> dict:
        out = {
            "steps_left": self.steps,
            "tests_left": self.tests,
            "compute_s_left": None
            if math.isinf(self.compute_s)
            else round(max(self.compute_s, 0.0), 1),
        }
        if self.actions is not None:
            out["actions_left"] = self.actions
        return out


@dataclass
class EpisodeState:
    """The episode in play. ``tests`` holds every scored test (its number, score and code);
    ``events`` the tamper report; ``bonus`` the dense reward due on the current step."""

    task: Task
    config: EnvConfig
    tool_names: list[str]
    episode_dir: Path
    workspace: Workspace
    budget: Budget
    command_timeout: float
    deadline: float | None
    slots: Slots | None = None
    sandbox: Any = None
    log: TrajectoryLog | None = None
    progress: Callable[[str, int, SettingRun], None] | None = None
    isolation: str | None = None
    agent_isolation: str | None = None
    tests: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    jobs: dict[int, TestJob] = field(default_factory=dict)
    tests_started: int = 0
    best_visible: float = 0.0
    bonus: float = 0.0
    step_count: int = 0
    done: bool = False
    last_obs: str = ""
    marks: str = ""  # T: a test ran, E: an edit applied (the protocol's required iteration)

    @property
    def protocol(self) -> Protocol:
        return get_protocol(self.config.protocol)

    def event(self, kind: str, detail: str) -> None:
        self.events.append({"step": self.step_count, "kind": kind, "detail": detail})

    def run_events(self, run: SettingRun) -> None:
        """A run's policy violations and rejected artifacts go into the tamper report."""
        for v in run.policy_violations:
            self.event("policy_violation", v)
        if run.error and run.error.startswith("grader rejected"):
            self.event("artifact_rejected", f"{run.label} seed {run.seed}: {run.error}")

    def slot(self):
        """Hold one machine-wide experiment slot (``max_experiments``) around a command."""
        return self.slots.hold() if self.slots else contextlib.nullcontext()

    def sandbox_uid(self) -> int | None:
        return getattr(self.sandbox, "uid", None)

    def record(self, record: dict) -> None:
        if self.log:
            self.log.write(record)

    def hidden_runs(self) -> tuple[Path, ...]:
        return hidden_runs(self.config.runs_dir)


# fields a snapshot copies (the rest is the episode's place: folders, sandbox, log, config)
_SNAPSHOT_FIELDS = (
    "tests",
    "events",
    "tests_started",
    "best_visible",
    "step_count",
    "done",
    "last_obs",
    "marks",
)


@dataclass(frozen=True)
class EpisodeSnapshot:
    """An episode's state (``ResearchEnv.snapshot``): the workspace, budgets, test history,
    events and finished background jobs, in memory."""

    id: str
    task: str
    workspace: WorkspaceState
    budget: Budget
    state: dict  # the other episode fields, deep-copied
    log: tuple[str, int] | None  # (trajectory file, byte offset): where its history is logged

    @property
    def nbytes(self) -> int:
        return self.workspace.nbytes


def take_snapshot(ep: EpisodeState, np_random: Any) -> EpisodeSnapshot:
    running = [str(j.id) for j in ep.jobs.values() if j.running]
    if running:
        raise MLSBenchError(
            f"background job(s) {', '.join(running)} are still running; wait for or cancel "
            "them (the `jobs` tool) before snapshot()"
        )
    log = None
    if ep.log is not None and not ep.log.closed:
        log = (str(ep.log.path), ep.log.offset())
    state = {name: getattr(ep, name) for name in _SNAPSHOT_FIELDS}
    state["jobs"] = {i: j.frozen() for i, j in ep.jobs.items()}
    state["np_random"] = np_random
    return EpisodeSnapshot(
        id=uuid.uuid4().hex[:12],
        task=ep.task.id,
        workspace=ep.workspace.capture(),
        budget=dataclasses.replace(ep.budget),
        state=copy.deepcopy(state),
        log=log,
    )


def put_back(ep: EpisodeState, snap: EpisodeSnapshot) -> Any:
    """Restore ``snap`` into ``ep`` (its jobs already cancelled); returns the snapshot's
    random generator for the env."""
    ep.workspace.restore(snap.workspace, owner=ep.sandbox_uid())
    st = copy.deepcopy(snap.state)
    ep.budget = dataclasses.replace(snap.budget)
    for name in _SNAPSHOT_FIELDS:
        setattr(ep, name, st[name])
    ep.jobs, ep.bonus = st["jobs"], 0.0
    if ep.log is not None and ep.log.closed and not ep.done:
        ep.log.reopen()
    return st["np_random"]
