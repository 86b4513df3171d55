"""Playing whole episodes: the agent protocol, scripted baseline agents, the episode loop."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlsbench_env.env import ResearchEnv
from mlsbench_env.spec import Task


class Agent(Protocol):
    name: str

    def act(self, observation: str, info: dict[str, Any]) -> str | dict:
        """The next action for this observation."""
        ...


class BaselineAgent:
    """Applies a baseline's edit of the editable regions, runs one test, submits.

    ``baseline:default`` submits the scaffold unchanged (after one test)."""

    def __init__(self, task: Task, baseline: str):
        self.name = f"baseline-{baseline}"
        if task.is_competition:
            self._plan = self._pipeline_plan(task, baseline)
            return
        regions = task.baseline_regions(baseline)
        # bottom-up, so that an edit never shifts the lines of a region still to edit
        self._plan: list[dict] = [
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
            for r in sorted(task.regions, key=lambda r: (r.file, -r.start))
            if regions
        ]
        self._plan += [{"tool": "test", "args": {}}, {"tool": "submit", "args": {}}]

    @staticmethod
    def _pipeline_plan(task: Task, baseline: str) -> list[dict]:
        """A competition baseline: write the pipeline's files, run it, validate, submit
        (`default` submits the sample submission)."""
        comp = task.spec.competition
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
        return self._plan.pop(0) if self._plan else {"tool": "submit", "args": {}}


@dataclass
class EpisodeResult:
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

    @classmethod
    def at_end(cls, env, agent, seed, reward, steps, terminated, truncated, info) -> EpisodeResult:
        """The result of an episode that just ended (``env`` may be wrapped)."""
        un: Any = env.unwrapped
        return cls(
            task=getattr(getattr(un, "task", None), "id", str(un)),
            agent=agent.name,
            seed=seed,
            reward=reward,
            score=info.get("score"),
            score_spread=info.get("score_spread"),
            vanilla_score=info.get("vanilla_score"),
            steps=steps,
            terminated=terminated,
            truncated=truncated,
            final_info=info,
            run_dir=str(un.run_dir) if getattr(un, "run_dir", None) else None,
        )


def run_episode(
    env: ResearchEnv, agent: Agent, seed: int | None = 0, on_step=None
) -> EpisodeResult:
    """reset, then act/step until the episode ends."""
    obs, info = env.reset(seed=seed)
    reward, terminated, truncated, steps = 0.0, False, False, 0
    while not (terminated or truncated):
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(
            action if isinstance(action, str) else json.dumps(action)
        )
        steps += 1
        if on_step:
            on_step(steps, action, obs, info)
    return EpisodeResult.at_end(env, agent, seed, reward, steps, terminated, truncated, info)
