"""Playing whole episodes: the agent protocol, the scripted baseline agents and
``run_episode``, the one driver every agent is played by (baselines, LLM agents, the pool's).

An agent needs only ``name`` and ``act``; ``start``, ``observe`` and ``totals`` are optional.
An agent with ``totals`` (an LLM agent) gets its records in the trajectory: ``agent_crash``
and ``agent_end`` (its exit status and totals); a baseline's trajectory has only the env's.
"""

from __future__ import annotations

import json
import logging
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.spec import Task

log = logging.getLogger(__name__)

ExitStatus = Literal[
    "submitted",  # the agent called submit: the env ran the final evaluation
    "truncated",  # an env budget (steps, compute) ran out
    "max_model_calls",  # limits.max_model_calls reached
    "cost_limit",  # limits.cost_limit_usd reached
    "format_errors",  # limits.max_format_errors replies in a row with no action in them
    "model_error",  # retry.max_consecutive_errors failed calls in a row
    "model_exhausted",  # a scripted / replay model ran out of replies
    "stopped",  # an agent without a stop_reason stopped (act returned None)
    "interrupted",  # Ctrl-C (re-raised after recording)
    "crashed",  # an exception in the episode (re-raised after recording, unless scored)
]


class Agent(Protocol):
    """What ``run_episode`` plays. Only ``name`` and ``act`` are required; the driver looks the
    optional methods up with ``getattr``:

    - ``start(env, observation, info) -> None``: once after reset (``env`` is the unwrapped
      ``ResearchEnv``, for ``env.record``);
    - ``observe(action, observation, reward, terminated, truncated, info) -> None``: after each
      step;
    - ``totals() -> dict``: what the agent spent, for the ``agent_end`` record;
    - ``stop_reason``: the exit status when ``act`` returns None."""

    name: str

    def act(self, observation: str, info: dict[str, Any]) -> str | dict | None:
        """The next action for this observation, or None to stop."""
        ...


class BaselineAgent:
    """Applies a baseline's edit of the editable regions, runs one test, submits.

    ``baseline:default`` submits the scaffold unchanged (after one test). Under a protocol that
    requires an iteration before submit (``mlsbench-paper``, ``mlsbench-v3``) it applies its
    edit, tests, applies it again (the default baseline: the scaffold's own text), tests again
    and submits test 1, the one that ran every final seed (see ``start``)."""

    def __init__(self, task: Task, baseline: str):
        self.name = f"baseline-{baseline}"
        self._plan: list[dict]
        self._task = task
        if task.is_competition:
            self._plan = self._pipeline_plan(task, baseline)
            return
        self._regions = task.baseline_regions(baseline)
        self._plan = self._edits(self._regions)
        self._plan += [{"tool": "test", "args": {}}, {"tool": "submit", "args": {}}]

    def _edits(self, regions: dict) -> list[dict]:
        # bottom-up, so that an edit never shifts the lines of a region still to edit
        return [
            {
                "tool": "edit",
                "args": {
                    "path": r.file,
                    "action": "replace",
                    "start": r.start,
                    "end": r.end,
                    "text": regions[(r.file, r.index)],
                },
            }
            for r in sorted(self._task.regions, key=lambda r: (r.file, -r.start))
            if regions
        ]

    def start(self, env, observation: str, info: dict[str, Any]) -> None:
        from mlsbench_env.env.protocol import get_protocol

        if self._task.is_competition or not get_protocol(info.get("protocol")).require_iteration:
            return
        self._env = env
        self._plan = [
            *self._edits(self._regions),
            {"tool": "test", "args": {}},
            {"tool": "reapply"},  # expanded when reached (``act``): the ranges have moved
            {"tool": "test", "args": {}},
            {"tool": "submit", "args": {"test": 1}},
        ]

    def _reapply(self) -> list[dict]:
        """Edits that write each editable region's current text over itself (the iteration
        such a protocol asks for; the code stays the baseline's), bottom-up."""
        ws = self._env.workspace
        texts = ws.region_texts()
        return [
            {
                "tool": "edit",
                "args": {
                    "path": file,
                    "action": "replace",
                    "start": r.start,
                    "end": r.end,
                    "text": texts[(file, i)],
                },
            }
            for file, ranges in ws.ranges.items()
            for i, r in sorted(enumerate(ranges, 1), key=lambda x: -x[1].start)
        ]

    @staticmethod
    def _pipeline_plan(task: Task, baseline: str) -> list[dict]:
        """A competition baseline: write the pipeline's files, run it, validate, submit
        (`default` submits the sample submission)."""
        comp = task.spec.competition
        assert comp is not None  # only competitions have a pipeline
        files = task.baseline_files(baseline)
        plan = [
            {"tool": "edit", "args": {"path": path, "action": "create", "text": text}}
            for path, text in files.items()
        ]
        command = comp.run if files else f"cp {comp.sample_submission} {comp.submission}"
        plan += [
            {"tool": "shell", "args": {"command": command}},
            {"tool": "validate", "args": {}},
            {"tool": "submit", "args": {}},
        ]
        return plan

    def act(self, observation: str, info: dict[str, Any]) -> dict:
        if self._plan and self._plan[0]["tool"] == "reapply":
            self._plan[:1] = self._reapply()
        return self._plan.pop(0) if self._plan else {"tool": "submit", "args": {}}


@dataclass
class EpisodeOutcome:
    """A played episode: the final score and info, how it ended (``status``, an ExitStatus)
    and, for agents that count them, the agent's totals (an LLM agent's tokens and cost)."""

    task: str
    agent: str
    seed: int | None
    reward: float
    score: float | None
    score_spread: float | None
    vanilla_score: float | None
    steps: int
    terminated: bool
    truncated: bool
    final_info: dict = field(default_factory=dict)
    run_dir: str | None = None
    status: ExitStatus = "submitted"
    totals: dict | None = None


class Episode:
    """The bookkeeping of one episode, shared by ``run_episode`` and the pool's async driver:
    the agent's optional methods, the step count, the exit status and the agent records."""

    def __init__(
        self,
        env,
        agent: Agent,
        seed: int | None,
        on_step: Callable | None = None,
        score_unsubmitted: bool = False,
    ):
        self.env, self.agent, self.seed, self.on_step = env, agent, seed, on_step
        self.score_unsubmitted = score_unsubmitted
        self.un: Any = env.unwrapped  # records go to the ResearchEnv under any wrappers
        self._totals: Callable[[], dict] | None = getattr(agent, "totals", None)
        self.records = self._totals is not None
        self.reward, self.terminated, self.truncated, self.steps = 0.0, False, False, 0
        self.status: ExitStatus | None = None
        self.obs: str = ""
        self.info: dict = {}
        self.action: str | dict | None = None

    def begin(self, obs: str, info: dict, extra_records: Iterable[dict] = ()) -> None:
        self.obs, self.info = obs, info
        start = getattr(self.agent, "start", None)
        if start:
            start(self.un, obs, info)
        for rec in extra_records:
            self.un.record(rec)

    def encode(self, action: str | dict | None) -> str | None:
        """The action as the env takes it; None (and the exit status) when the agent stops."""
        self.action = action
        if action is None:
            self.status = getattr(self.agent, "stop_reason", None) or "stopped"
            return None
        return action if isinstance(action, str) else json.dumps(action)

    def stepped(self, out: tuple) -> None:
        """The env's answer to the action last encoded."""
        self.obs, self.reward, self.terminated, self.truncated, self.info = out
        self.steps += 1
        observe = getattr(self.agent, "observe", None)
        if observe:
            observe(self.action, *out)
        if self.on_step:
            self.on_step(self.steps, self.action, self.obs, self.info)
        if self.terminated or self.truncated:
            self.status = "submitted" if self.terminated else "truncated"

    @contextmanager
    def playing(self) -> Iterator[None]:
        """Around the act/step loop: Ctrl-C is recorded and re-raised; another exception is
        recorded and re-raised unless the episode is scored anyway (``score_unsubmitted``)."""
        try:
            yield
        except KeyboardInterrupt:
            self.status = "interrupted"
            self.end()
            raise
        except Exception:
            self.status = "crashed"
            if self.records:
                self.un.record({"type": "agent_crash", "traceback": traceback.format_exc()})
            if not self.score_unsubmitted:
                self.end()
                raise
            log.warning("the agent crashed (traceback in the trajectory); scoring its code")

    @contextmanager
    def ending(self) -> Iterator[bool]:
        """Yields whether the ``with`` body must score the code the agent left unsubmitted
        (``score_unsubmitted``, and it stopped or crashed); ends the agent's records after."""
        try:
            yield self.score_unsubmitted and not (self.terminated or self.truncated)
        finally:
            self.end()

    def scored(self, reward: float, final: dict) -> None:
        self.reward, self.info = reward, {**self.info, **final}

    def end(self) -> None:
        if self.records:
            self.un.record({"type": "agent_end", "status": self.status, "totals": self.totals()})

    def totals(self) -> dict | None:
        return self._totals() if self._totals else None

    def outcome(self) -> EpisodeOutcome:
        un, info = self.un, self.info
        return EpisodeOutcome(
            task=getattr(getattr(un, "task", None), "id", str(un)),
            agent=self.agent.name,
            seed=self.seed,
            reward=self.reward,
            score=info.get("score"),
            score_spread=info.get("score_spread"),
            vanilla_score=info.get("vanilla_score"),
            steps=self.steps,
            terminated=self.terminated,
            truncated=self.truncated,
            final_info=info,
            run_dir=str(un.run_dir) if getattr(un, "run_dir", None) else None,
            status=self.status or "crashed",
            totals=self.totals(),
        )


def run_episode(
    env: ResearchEnv,
    agent: Agent,
    seed: int | None = 0,
    *,
    on_step: Callable | None = None,
    score_unsubmitted: bool = False,
    extra_records: Iterable[dict] = (),
) -> EpisodeOutcome:
    """reset, ``agent.start``, then act/step/observe until the episode ends or the agent stops
    (``act`` returns None). ``env`` may be wrapped; records go to the ResearchEnv under it.
    ``on_step(n, action, observation, info)`` is called after every step.

    Ctrl-C is recorded and re-raised; another exception is recorded and re-raised unless
    ``score_unsubmitted``. With ``score_unsubmitted``, an episode the agent leaves unsubmitted
    (it stopped or crashed) gets the env's final evaluation (``ResearchEnv.end_unsubmitted``),
    so it ends with a score. Ctrl-C is never scored."""
    ep = Episode(env, agent, seed, on_step, score_unsubmitted)
    obs, info = env.reset(seed=seed)
    with ep.playing():
        ep.begin(obs, info, extra_records)
        while ep.status is None:
            encoded = ep.encode(agent.act(ep.obs, ep.info))
            if encoded is not None:
                ep.stepped(env.step(encoded))
    with ep.ending() as unsubmitted:
        if unsubmitted:
            ep.scored(*ep.un.end_unsubmitted(ep.status))
    return ep.outcome()


def env_defaults(agent: Agent) -> dict[str, Any]:
    """Env options an agent asks for (an LLM agent's observation cap, tool subset and protocol
    preset); the caller's own options win (``protocol.with_agent_defaults`` merges them)."""
    defaults = getattr(agent, "env_defaults", None)
    out = defaults() if defaults else {}
    protocol = getattr(getattr(agent, "config", None), "protocol", None)
    return out | ({"protocol": protocol} if protocol else {})
