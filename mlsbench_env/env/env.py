"""The gymnasium environment: one research task per episode.

``reset()`` materializes a fresh workspace and sandbox; ``step(action)`` runs one tool; the
episode ends at ``submit`` (terminated) or when a budget runs out (truncated). Reward is 0 on
every step except the terminal one, which is the final score (0..100 x ``reward_scale``).

Measured usage (compute seconds) changes only on steps that ran commands, so ``info`` and the
observation are identical across two runs with the same seed and actions on steps that ran
nothing; durations live in the trajectory log.
"""

from __future__ import annotations

import functools
import math
import shutil
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from mlsbench_env.env import background, handlers, render
from mlsbench_env.env.config import EnvConfig
from mlsbench_env.env.log import TrajectoryLog, append_record, end_record
from mlsbench_env.env.protocol import Protocol, get_protocol
from mlsbench_env.env.state import Budget, EpisodeSnapshot, EpisodeState, put_back, take_snapshot
from mlsbench_env.errors import ActionError, MLSBenchError
from mlsbench_env.evaluation import SettingRun
from mlsbench_env.sandbox import agent_code_isolation, isolation_level, make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.spec import Task, load_task
from mlsbench_env.tools import parse_action, select_tools, tool_schemas, usage
from mlsbench_env.tools.jobs import Slots
from mlsbench_env.workspace import Workspace


class FullText(gym.spaces.Text):
    """A text space whose ``contains`` holds for any string up to ``max_length`` characters
    (gymnasium's Text with its default charset rejects newlines and punctuation)."""

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length


@gym.vector.utils.shared_memory.create_shared_memory.register(FullText)
def _no_shared_text(space, n=1, ctx=None):
    # Fail loudly instead of gymnasium's silent zeros for text in shared memory.
    raise TypeError(
        "mlsbench text observations cannot travel through shared memory; use "
        "gym.make_vec(id, n) (the default vector entry point) or "
        "vector_kwargs={'shared_memory': False}"
    )


class ResearchEnv(gym.Env):
    """A research task as a multi-turn text environment (see the module docstring). The
    episode in play is ``self.episode`` (an ``EpisodeState``)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: str | Path | Task, render_mode: str | None = None, **options):
        self.task = task if isinstance(task, Task) else load_task(task)
        self.config = EnvConfig(**options)
        self.render_mode = render_mode
        c = self.config
        self.tool_names = select_tools(self.task.is_competition, c.tools, c.max_jobs)
        self._slots = Slots(self.config.max_experiments) if self.config.max_experiments else None
        self.observation_space = FullText(max_length=render.MAX_OBS_CHARS, min_length=0)
        self.action_space = FullText(max_length=render.MAX_OBS_CHARS, min_length=0)
        self.episode: EpisodeState | None = None
        self._progress: Callable[[str, int, SettingRun], None] | None = None
        self.run_dir: Path | None = None  # the last episode's run folder (kept after close)

    @property
    def progress(self) -> Callable[[str, int, SettingRun], None] | None:
        """Called with (setting, seed, run) after every setting run (tests, final evaluations)."""
        return self._progress

    @progress.setter
    def progress(self, fn: Callable[[str, int, SettingRun], None] | None) -> None:
        self._progress = fn
        if self.episode is not None:
            self.episode.progress = fn

    # what callers read of the episode in play
    workspace = property(lambda self: self.episode.workspace)
    budget = property(lambda self: self.episode.budget)
    tests = property(lambda self: self.episode.tests)
    events = property(lambda self: self.episode.events)
    isolation = property(lambda self: self.episode and self.episode.isolation)
    agent_isolation = property(lambda self: self.episode and self.episode.agent_isolation)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._teardown(wait=False)
        b, c, p = self.task.spec.budgets, self.config, self.protocol
        root = Path(c.work_dir) if c.work_dir else Path(tempfile.gettempdir()) / "mlsbench-episodes"
        root.mkdir(parents=True, exist_ok=True)
        episode_dir = root / f"ep-{uuid.uuid4().hex[:12]}"
        ep = self.episode = EpisodeState(
            task=self.task,
            config=c,
            tool_names=self.tool_names,
            episode_dir=episode_dir,
            workspace=Workspace(self.task, episode_dir / "workspace"),
            budget=Budget(
                steps=c.max_steps or b.max_steps,
                tests=b.tests if c.test_budget is None else c.test_budget,
                compute_s=(c.compute_budget_s or b.compute_s) if p.compute_budget else math.inf,
                actions=p.max_actions,
            ),
            command_timeout=c.command_timeout_s or b.command_timeout_s,
            deadline=time.monotonic() + b.wall_s if b.wall_s else None,
            slots=self._slots,
            progress=self._progress,
        )
        (episode_dir / "out").mkdir()
        self._open_log(ep, seed)
        # background tests run (and are graded) while the agent's commands run: their folders
        # are covered in the episode's sandbox, so no command can touch a test in flight
        (episode_dir / "jobs").mkdir()
        hidden = (*ep.hidden_runs(), episode_dir / "jobs")
        ep.sandbox = make_sandbox(c.sandbox, sandbox_config(self.task, episode_dir, hidden, c.gpus))
        # waits for the sandbox: a missing interpreter fails the reset, not the first command
        iso = ep.sandbox.isolation()
        ep.isolation, ep.agent_isolation = isolation_level(iso), agent_code_isolation(iso)
        if ep.agent_isolation != "landlock" and not self.task.is_competition:
            why = (
                f"agent code of this task runs with isolation {ep.agent_isolation!r}: the "
                f"{c.sandbox} sandbox offers no Landlock, so the task kit's child is contained "
                "by the sandbox alone"
            )
            if c.require_isolation:
                self._teardown(wait=False)
                raise MLSBenchError(why + "; require_isolation=True refuses to run so")
            _warn_once(why)
        names = self.tool_names
        obs = render.render_prompt(
            self.task, ep.workspace, names, render.footer(ep), c.show_baseline_code
        )
        if p.select_tests:  # the tool list as this protocol means its tools, and its rules
            obs = obs.replace(usage(names), usage(names, select=True))
            obs = obs.replace("\n## Budgets\n", f"\n{p.prompt_note()}\n\n## Budgets\n")
        isolation = {"isolation": ep.isolation, "agent_isolation": ep.agent_isolation}
        info = {
            "tool": None,
            "ok": True,
            "budget": ep.budget.as_dict(),
            "tools": tool_schemas(self.tool_names, p.select_tests),
            "task": self.task.id,
            "protocol": p.name,
            "gym_id": self.task.gym_id,
            **isolation,
        }
        ep.record({"type": "reset", "seed": seed, "observation": obs, **isolation})
        ep.last_obs = obs
        return obs, info

    def step(self, action):
        ep = self.episode
        if ep is None or ep.done:
            budget = ep.budget.as_dict() if ep else {}
            obs = "The episode is over; call reset() to start a new one."
            return obs, 0.0, True, False, {"tool": None, "ok": False, "budget": budget}
        started = time.perf_counter()
        ep.step_count += 1
        background.collect(ep)
        info: dict[str, Any] = {}
        reward, terminated = 0.0, False
        try:
            name, args = parse_action(action, self.tool_names, self.protocol.select_tests)
        except ActionError as e:
            name, text, ok = None, f"Invalid action: {e}", False
            handlers.spend_step(ep, None)
        else:
            refused = handlers.spend_step(ep, name)
            try:
                if refused:
                    raise MLSBenchError(refused)
                text, ok, info, terminated = handlers.HANDLERS[name](ep, args)
                ep.marks += "E" if ok and name in handlers.EDITS else ""
            except (MLSBenchError, ActionError) as e:  # e.g. submit of a test that never ran
                text, ok = f"{name} failed: {e}", False
            except Exception as e:  # an env bug must not lose the episode: report and go on
                text, ok = f"{name} failed with an internal error: {type(e).__name__}: {e}", False
                ep.event("internal_error", traceback.format_exc())
        background.collect(ep)
        if terminated:
            reward = float(info.get("score") or 0.0) * self.config.reward_scale
        elif ep.bonus:
            info["dense_reward"] = ep.bonus
            reward = ep.bonus * self.config.reward_scale
        ep.bonus = 0.0
        truncated = False
        if not terminated and (ran_out := handlers.exhausted(ep)):
            truncated = True
            text += f"\n\nBudget exhausted ({ran_out}): the episode is truncated."
            cancelled = background.cancel_all(ep)
            if cancelled:
                info["cancelled_jobs"] = cancelled
                text += "\n" + render.cancel_note(cancelled)
            if self.config.submit_on_truncation or (self.protocol.select_tests and ep.tests):
                more, final_info, reward = handlers.final_unsubmitted(ep)
                text += f" {self._why_final()}: " + more
                info.update(final_info)
            else:
                text += (
                    " No final evaluation was run (create the env with "
                    "submit_on_truncation=True to evaluate the code on truncation)."
                )
        obs = render.cap(text) + "\n\n" + render.footer(ep)
        info.update({"tool": name, "ok": ok, "budget": ep.budget.as_dict()})
        if terminated or truncated:
            info["tamper_report"] = list(ep.events)
        ep.record(
            {
                "type": "step",
                "step": ep.step_count,
                "action": action if isinstance(action, str | dict) else repr(action),
                "tool": name,
                "ok": ok,
                "observation": obs,
                "reward": reward,
                "terminated": terminated,
                "truncated": truncated,
                "info": {k: v for k, v in info.items() if k != "tools"},
                "duration_s": time.perf_counter() - started,
            }
        )
        if terminated or truncated:
            self._finish(ep, reward, "submitted" if terminated else "truncated", info)
        ep.last_obs = obs
        return obs, reward, terminated, truncated, info

    def end_unsubmitted(self, reason: str) -> tuple[float, dict]:
        """End an episode its agent stopped without submitting (``reason``: the agent's exit
        status) with the final evaluation of its current code (a competition: its submission
        file), so that every cell of a comparison has a number; recorded as status
        ``not_submitted``. Returns (reward, final info)."""
        ep = self.episode
        if ep is None or ep.done:
            raise MLSBenchError("the episode is over; nothing to evaluate")
        background.cancel_all(ep)
        _, info, reward = handlers.final_unsubmitted(ep, current_code=True)
        info.update(budget=ep.budget.as_dict(), not_submitted=reason)
        info["tamper_report"] = list(ep.events)
        ep.record({"type": "not_submitted", "reason": reason, "score": info.get("score")})
        self._finish(ep, reward, "not_submitted", info)
        return reward, info

    def render(self):
        if self.render_mode == "ansi":
            return self.episode.last_obs if self.episode else ""
        return None

    def close(self):
        self._teardown()
        super().close()

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> EpisodeSnapshot:
        """The episode's state now (workspace files, edits and their undo history, budgets,
        test history, events, finished background jobs), in memory; see ``restore``. Refused
        while background tests run (wait for or cancel them first)."""
        if self.episode is None:
            raise MLSBenchError(
                "nothing to snapshot: the env was never reset, or is closed (an EnvPool closes "
                "an episode when it ends); snapshot before the last step, or call reset()"
            )
        background.collect(self.episode)
        return take_snapshot(self.episode, self._np_random)

    def restore(self, snap: EpisodeSnapshot) -> str:
        """Put the episode back in ``snap``'s state and return its last observation. Works on
        any env of the same task: one without a live episode starts one first. Running
        background jobs are cancelled. The trajectory gets a ``restore`` record naming where
        the snapshot's history is logged, so exports follow each branch."""
        if snap.task != self.task.id:
            raise MLSBenchError(f"a snapshot of task {snap.task!r} cannot restore {self.task.id!r}")
        if self.episode is None:
            self.reset()
        ep = self.episode
        assert ep is not None  # reset made one
        background.cancel_all(ep)
        self._np_random = put_back(ep, snap)
        self.record(
            {
                "type": "restore",
                "snapshot": snap.id,
                "step": ep.step_count,
                "from_log": snap.log[0] if snap.log else None,
                "from_offset": snap.log[1] if snap.log else None,
            }
        )
        return ep.last_obs

    # ------------------------------------------------------------------ records
    def record(self, record: dict) -> None:
        """Append ``record`` to this episode's trajectory (agents log their model calls here).
        After the episode's end record it still appends (an agent's closing totals)."""
        ep = self.episode
        if ep is not None and ep.log is not None and not ep.done:
            ep.record(record)
        elif self.run_dir is not None and (self.run_dir / "trajectory.jsonl").is_file():
            append_record(self.run_dir / "trajectory.jsonl", record)

    def _open_log(self, ep: EpisodeState, seed: int | None) -> None:
        c, task = self.config, self.task
        self.run_dir = None
        if not c.runs_dir:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(c.runs_dir) / f"{stamp}-{task.id}-{c.agent_name}-{uuid.uuid4().hex[:6]}"
        has_anchors = (task.root / "anchors.json").exists()
        header = {
            "task": task.id,
            "task_version": task.spec.version,
            "gym_id": task.gym_id,
            "task_hash": task.content_hash(),
            "anchors_hash": task.content_hash("anchors.json") if has_anchors else None,
            "config": c.model_dump(),
            "seed": seed,
            "agent": c.agent_name,
            "tools": self.tool_names,
            "protocol": c.protocol,
        }
        ep.log = TrajectoryLog(self.run_dir / "trajectory.jsonl", header)

    def _finish(self, ep: EpisodeState, reward: float, status: str, info: dict) -> None:
        ep.done = True
        ep.record(end_record(ep, reward, status, info))
        if ep.log:
            ep.log.close()

    # ------------------------------------------------------------------ helpers
    @property
    def protocol(self) -> Protocol:
        return get_protocol(self.config.protocol)

    def _why_final(self) -> str:
        if self.protocol.select_tests and self.episode and self.episode.tests:
            return f"protocol {self.protocol.name} submits the last test"
        return "submit_on_truncation is set"

    def _teardown(self, wait: bool = True) -> None:
        ep, self.episode = self.episode, None
        if ep is None:
            return
        for job in ep.jobs.values():
            job.cancel()  # its thread removes its folder; the episode folder goes below
        if ep.log is not None:
            if not ep.done:
                ep.record({"type": "end", "status": "abandoned", "steps": ep.step_count})
            ep.log.close()

        def release():
            if ep.sandbox is not None:
                ep.sandbox.close()
            shutil.rmtree(ep.episode_dir, ignore_errors=True)

        if wait:
            release()
        else:  # reset: the old episode's clean-up need not delay the new one
            threading.Thread(target=release, daemon=True).start()

    def __del__(self):
        try:
            self._teardown()
        except Exception:
            pass


@functools.cache
def _warn_once(message: str) -> None:
    """Say it once per process: every reset of every env would repeat it."""
    warnings.warn(message, RuntimeWarning, stacklevel=3)
