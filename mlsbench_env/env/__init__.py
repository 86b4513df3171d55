"""The gymnasium environment: one research task per episode.

``reset()`` materializes a fresh workspace and sandbox; ``step(action)`` runs one tool; the
episode ends at ``submit`` (terminated) or when a budget runs out (truncated). Reward is 0 on
every step except the terminal one, which is the final score (0..100 x ``reward_scale``).

Measured usage (compute seconds) changes only on steps that ran commands, so ``info`` and the
observation are identical across two runs with the same seed and actions on steps that ran
nothing; durations live in the trajectory log.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import shutil
import tempfile
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from mlsbench_env.env.log import TrajectoryLog
from mlsbench_env.env.render import render_prompt
from mlsbench_env.errors import MLSBenchError, UnknownNameError
from mlsbench_env.evaluation import (
    RUN_ENV,
    FinalResult,
    SettingRun,
    final_evaluation,
    grade_submission,
    medal_of,
    new_out_dir,
    run_setting,
    score_runs,
    validate_submission,
)
from mlsbench_env.sandbox import agent_code_isolation, isolation_level, make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.spec import Task, load_task
from mlsbench_env.tools import (
    COMPETITION_TOOLS,
    OPT_IN_TOOLS,
    TOOLS,
    ActionError,
    EditArgs,
    JobsArgs,
    ShellArgs,
    SubmitArgs,
    UndoArgs,
    ValidateArgs,
    ViewArgs,
    parse_action,
    tool_schemas,
)
from mlsbench_env.tools.jobs import Slots, TestJob
from mlsbench_env.workspace import Workspace, WorkspaceState, transplant

MAX_OBS_CHARS = 400_000
SHELL_ENV = {k: v for k, v in RUN_ENV.items() if k.endswith("_NUM_THREADS")}
CHARS_PER_TOKEN = 4  # observation budgets are estimated at 4 characters per token


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


class EnvConfig(BaseModel):
    """Episode options (``gym.make(id, **options)``); unset budgets come from the task."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sandbox: str = Field("local", description="Sandbox backend: local | docker.")
    require_isolation: bool = Field(
        False,
        description="Refuse to reset where agent code cannot run under Landlock (the kernel "
        "lacks it, or a seccomp filter hides it) instead of running with the sandbox alone.",
    )
    gpus: int = Field(
        0, ge=0, description="GPUs per episode (docker backend); compute is charged wall x GPUs."
    )
    tools: tuple[str, ...] | None = Field(None, description="Tool subset (default: all).")
    max_steps: int | None = Field(None, ge=1, description="Tool calls per episode.")
    test_budget: int | None = Field(None, ge=0, description="Number of `test` calls.")
    compute_budget_s: float | None = Field(None, gt=0, description="Compute seconds.")
    command_timeout_s: float | None = Field(None, gt=0, description="One shell command.")
    obs_max_tokens: int = Field(4000, ge=100, description="Cap on command output shown.")
    reward_scale: float = Field(1.0, gt=0, description="Terminal reward = score x this.")
    submit_on_truncation: bool = Field(
        False,
        description="When a budget runs out, run the final evaluation of the "
        "code of the last test (or the current code if none) anyway (explicit opt-in; never "
        "done silently).",
    )
    final_seeds: tuple[int, ...] | None = Field(
        None, description="Override the task's final seeds (quick checks; not comparable)."
    )
    runs_dir: str | None = Field("runs", description="Trajectory logs go here (None: no log).")
    work_dir: str | None = Field(None, description="Where episode workspaces live.")
    agent_name: str = Field("agent", description="Recorded in the log and run folder name.")
    max_jobs: int = Field(
        0,
        ge=0,
        description="Background tests at once (`test` with wait=false, polled with the `jobs` "
        "tool). 0: off (the default), `test` always blocks.",
    )
    max_experiments: int | None = Field(
        None,
        ge=1,
        description="At most this many sandbox commands (test settings, shell commands, final "
        "evaluations) at once on this machine, counted across processes; the others wait, "
        "unbilled (mlsbench_env.tools.jobs.Slots). None: no limit.",
    )
    dense_reward: float = Field(
        0.0,
        ge=0,
        description="Opt-in shaping: a test whose visible score beats the best earlier one by d "
        "points pays dense_reward x d x reward_scale on the step that shows it. The terminal "
        "reward stays the final score. 0: off.",
    )


@dataclass
class Budget:
    steps: int
    tests: int
    compute_s: float

    def as_dict(self) -> dict:
        return {
            "steps_left": self.steps,
            "tests_left": self.tests,
            "compute_s_left": round(max(self.compute_s, 0.0), 1),
        }


@dataclass(frozen=True)
class EpisodeSnapshot:
    """An episode's state (``ResearchEnv.snapshot``): the workspace, budgets, test history,
    events and finished background jobs, in memory. ``restore`` it into any env of the same
    task, any number of times (tree search, branching rollouts)."""

    id: str
    task: str
    workspace: WorkspaceState
    budget: Budget
    state: dict  # the other episode fields, deep-copied
    log: tuple[str, int] | None  # (trajectory file, byte offset): where its history is logged

    @property
    def nbytes(self) -> int:
        return self.workspace.nbytes


def final_info(result, runs, task: Task, seeds: list[int], vanilla_score) -> dict:
    """The terminal step's info: the scored result plus each setting's metrics (mean over
    seeds) and its first error."""
    metrics, errors = {}, {}
    for run in runs:
        if run.error:
            errors.setdefault(run.label, run.error)
        elif run.metrics:
            metrics.setdefault(run.label, {})
            for k, v in run.metrics.items():
                metrics[run.label].setdefault(k, []).append(v)
    means = {label: {k: sum(v) / len(v) for k, v in m.items()} for label, m in metrics.items()}
    for s in task.spec.settings:
        means.setdefault(s.label, {})
    return {
        "score": result.score,
        "score_spread": result.spread,
        "reason": result.reason,
        "seeds": seeds,
        "seed_scores": {s: v.value for s, v in result.seed_scores.items()},
        "setting_scores": result.setting_scores,
        "metrics": means,
        "errors": errors,
        "vanilla_score": vanilla_score,
        "final_runs": [r.record() for r in runs],
    }


class ResearchEnv(gym.Env):
    """A research task as a multi-turn text environment (see the module docstring)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: str | Path | Task, render_mode: str | None = None, **options):
        self.task = task if isinstance(task, Task) else load_task(task)
        self.config = EnvConfig(**options)
        self.render_mode = render_mode
        if self.task.is_competition:
            known = list(COMPETITION_TOOLS)
            # `test` means `validate` in a competition (there is no edit surface to test)
            names = [
                "validate" if n == "test" else n for n in (self.config.tools or COMPETITION_TOOLS)
            ]
            if self.config.max_jobs:
                raise MLSBenchError("competitions have no background tests (max_jobs must be 0)")
        else:
            known = [*TOOLS, *OPT_IN_TOOLS]
            names = list(self.config.tools or TOOLS)
        for n in names:
            if n not in known:
                raise UnknownNameError("tool", n, known)
        if "submit" not in names:
            names.append("submit")
        if "jobs" in names and not self.config.max_jobs:
            raise MLSBenchError("the `jobs` tool needs max_jobs >= 1 (background tests at once)")
        if self.config.max_jobs and "test" in names and "jobs" not in names:
            names.append("jobs")
        self._slots = Slots(self.config.max_experiments) if self.config.max_experiments else None
        self._jobs: dict[int, TestJob] = {}
        self.tool_names = names
        self.isolation: str | None = None  # the sandbox's isolation level (set at reset)
        self.agent_isolation: str | None = None  # what the task kit's child gets (at reset)
        self.observation_space = FullText(max_length=MAX_OBS_CHARS, min_length=0)
        self.action_space = FullText(max_length=MAX_OBS_CHARS, min_length=0)
        self.progress: Callable[[str, int, SettingRun], None] | None = None
        self._episode_dir: Path | None = None
        self._sandbox = None
        self._log: TrajectoryLog | None = None
        self._done = True
        self.run_dir: Path | None = None
        self._last_obs = ""

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._teardown(wait=False)
        b, c = self.task.spec.budgets, self.config
        self.budget = Budget(
            steps=c.max_steps or b.max_steps,
            tests=b.tests if c.test_budget is None else c.test_budget,
            compute_s=c.compute_budget_s or b.compute_s,
        )
        self.command_timeout = c.command_timeout_s or b.command_timeout_s
        self._deadline = time.monotonic() + b.wall_s if b.wall_s else None
        root = Path(c.work_dir) if c.work_dir else Path(tempfile.gettempdir()) / "mlsbench-episodes"
        root.mkdir(parents=True, exist_ok=True)
        self._episode_dir = root / f"ep-{uuid.uuid4().hex[:12]}"
        self.workspace = Workspace(self.task, self._episode_dir / "workspace")
        (self._episode_dir / "out").mkdir()
        self.tests: list[dict] = []
        self.events: list[dict] = []
        self._jobs = {}
        self._tests_started = 0
        self._best_visible = 0.0  # dense_reward: the best visible test score so far
        self._bonus = 0.0  # dense_reward due on this step
        self.step_count = 0
        self._done = False
        self._open_log(seed)
        hidden = (Path(c.runs_dir).resolve(),) if c.runs_dir else ()
        # background tests run (and are graded) while the agent's commands run: their folders
        # are covered in the episode's sandbox, so no command can touch a test in flight
        (self._episode_dir / "jobs").mkdir()
        hidden += (self._episode_dir / "jobs",)
        self._sandbox = make_sandbox(
            c.sandbox, sandbox_config(self.task, self._episode_dir, hidden, c.gpus)
        )
        # waits for the sandbox: a missing interpreter fails the reset, not the first command
        iso = self._sandbox.isolation()
        self.isolation = isolation_level(iso)
        self.agent_isolation = agent_code_isolation(iso)
        if self.agent_isolation != "landlock" and not self.task.is_competition:
            why = (
                f"agent code of this task runs with isolation {self.agent_isolation!r}: the "
                f"{c.sandbox} sandbox offers no Landlock, so the task kit's child is contained "
                "by the sandbox alone"
            )
            if c.require_isolation:
                self._teardown(wait=False)
                raise MLSBenchError(why + "; require_isolation=True refuses to run so")
            _warn_once(why)
        obs = render_prompt(self.task, self.workspace, self.tool_names, self._footer())
        info = {
            "tool": None,
            "ok": True,
            "budget": self.budget.as_dict(),
            "tools": tool_schemas(self.tool_names),
            "task": self.task.id,
            "gym_id": self.task.gym_id,
            "isolation": self.isolation,
            "agent_isolation": self.agent_isolation,
        }
        self._record(
            {
                "type": "reset",
                "seed": seed,
                "observation": obs,
                "isolation": self.isolation,
                "agent_isolation": self.agent_isolation,
            }
        )
        self._last_obs = obs
        return obs, info

    def step(self, action):
        if self._done:
            obs = "The episode is over; call reset() to start a new one."
            return (
                obs,
                0.0,
                True,
                False,
                {
                    "tool": None,
                    "ok": False,
                    "budget": self.budget.as_dict() if hasattr(self, "budget") else {},
                },
            )
        started = time.perf_counter()
        self.step_count += 1
        self.budget.steps -= 1
        self._collect_jobs()
        info: dict[str, Any] = {}
        reward, terminated = 0.0, False
        try:
            name, args = parse_action(action, self.tool_names)
        except ActionError as e:
            name, text, ok = None, f"Invalid action: {e}", False
        else:
            try:
                text, ok, info, terminated = self._dispatch(name, args)
            except (MLSBenchError, ActionError) as e:  # e.g. submit of a test that never ran
                text, ok = f"{name} failed: {e}", False
            except Exception as e:  # an env bug must not lose the episode: report and go on
                text, ok = f"{name} failed with an internal error: {type(e).__name__}: {e}", False
                self._event("internal_error", traceback.format_exc())
        self._collect_jobs()
        if terminated:
            reward = float(info.get("score") or 0.0) * self.config.reward_scale
        elif self._bonus:
            info["dense_reward"] = self._bonus
            reward = self._bonus * self.config.reward_scale
        self._bonus = 0.0
        truncated = False
        if not terminated:
            ran_out = self._exhausted()
            if ran_out:
                truncated = True
                text += f"\n\nBudget exhausted ({ran_out}): the episode is truncated."
                cancelled = self._cancel_jobs()
                if cancelled:
                    info["cancelled_jobs"] = cancelled
                    text += "\n" + _cancel_note(cancelled)
                if self.config.submit_on_truncation:
                    more, final_info, reward = self._final_unsubmitted()
                    text += " submit_on_truncation is set: " + more
                    info.update(final_info)
                else:
                    text += (
                        " No final evaluation was run (create the env with "
                        "submit_on_truncation=True to evaluate the code on truncation)."
                    )
        obs = _cap(text) + "\n\n" + self._footer()
        info.update({"tool": name, "ok": ok, "budget": self.budget.as_dict()})
        if terminated or truncated:
            info["tamper_report"] = list(self.events)
        self._record(
            {
                "type": "step",
                "step": self.step_count,
                "action": _jsonable(action),
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
            self._finish(reward, "submitted" if terminated else "truncated", info)
        self._last_obs = obs
        return obs, reward, terminated, truncated, info

    def end_unsubmitted(self, reason: str) -> tuple[float, dict]:
        """End an episode its agent stopped without submitting (``reason``: the agent's exit
        status) with the final evaluation of its current code (a competition: its submission
        file), so that every cell of a comparison has a number; recorded as status
        ``not_submitted``. Returns (reward, final info)."""
        if self._done:
            raise MLSBenchError("the episode is over; nothing to evaluate")
        self._cancel_jobs()
        _, info, reward = self._final_unsubmitted(current_code=True)
        info.update(budget=self.budget.as_dict(), not_submitted=reason)
        info["tamper_report"] = list(self.events)
        self._record({"type": "not_submitted", "reason": reason, "score": info.get("score")})
        self._finish(reward, "not_submitted", info)
        return reward, info

    def _final_unsubmitted(self, current_code: bool = False) -> tuple[str, dict, float]:
        """(what was evaluated and its score, final info, reward) for an episode that ends
        without submit: the submission file, else the last test's code (``current_code``: the
        code as it is now), else the current code."""
        if self.task.is_competition:
            text, info = "grading the submission file.", self._submit_competition()[2]
        else:
            last = self.tests[-1] if self.tests and not current_code else None
            what = f"test {last['n']}" if last else "the current code"
            text = f"evaluating {what}."
            info = self._final(
                last["regions"] if last else self.workspace.region_texts(),
                last["created"] if last else self.workspace.created_files(),
            )
        text += f"\nFinal score: {_fmt_score(info.get('score'))}"
        return text, info, float(info.get("score") or 0.0) * self.config.reward_scale

    def render(self):
        if self.render_mode == "ansi":
            return self._last_obs
        return None

    def close(self):
        self._teardown()
        super().close()

    # ------------------------------------------------------------------ tools
    def _dispatch(self, name: str, args) -> tuple[str, bool, dict, bool]:
        ws = self.workspace
        if name == "view":
            a: ViewArgs = args
            return ws.view(a.path, a.start, a.end), True, {}, False
        if name == "edit":
            return self._edit(args)
        if name == "undo":
            a: UndoArgs = args
            files = ws.undo(a.n)
            return f"Reverted {len(files)} edit(s): {', '.join(files)}", True, {}, False
        if name == "shell":
            return self._shell(args)
        if name == "test":
            return self._test(args)
        if name == "jobs":
            return self._jobs_tool(args)
        if name == "validate":
            return self._validate(args)
        if name == "submit":
            return self._submit_competition() if self.task.is_competition else self._submit(args)
        raise ActionError(f"unknown tool {name!r}")

    def _edit(self, a: EditArgs):
        ws = self.workspace
        try:
            if a.action == "create":
                out = ws.create(a.path, a.text)
            elif a.action == "insert":
                if a.after is None:
                    raise ActionError("insert needs `after` (the line to insert after; 0 = top)")
                out = ws.insert(a.path, a.after, a.text)
            else:
                if a.start is None or a.end is None:
                    raise ActionError("replace needs `start` and `end` (inclusive line numbers)")
                out = ws.replace(a.path, a.start, a.end, a.text)
        except MLSBenchError as e:
            self._event("edit_refused", str(e))
            raise
        return "Edit applied.\n" + out, True, {}, False

    def _shell(self, a: ShellArgs):
        if self.budget.compute_s <= 0:
            return "No compute budget left; `submit` to end the episode.", False, {}, False
        timeout = min(a.timeout or self.command_timeout, self.command_timeout)
        before = self.workspace.editable_snapshot()
        with self._slot():
            res = self._sandbox.exec(
                a.command,
                timeout=timeout,
                cwd="workspace",
                # one BLAS thread, as in test and final runs: compute is charged as wall time
                env=SHELL_ENV,
                max_output_bytes=self.config.obs_max_tokens * CHARS_PER_TOKEN * 4,
            )
        self.budget.compute_s -= res.compute_s
        events = self.workspace.check_integrity(before, self._sandbox_uid())
        for e in events:
            self._event("fixed_file_restored", e)
        out = _truncate_tokens(res.output, self.config.obs_max_tokens)
        head = f"exit code {res.returncode}"
        if res.killed:
            head += f"; {res.killed}"
        text = f"{head}\n{out}" if out else head
        if events:
            text += "\n[integrity] " + "\n[integrity] ".join(events)
        return text, res.ok, {"exit_code": res.returncode, "killed": res.killed}, False

    def _test(self, a=None):
        if a is not None and not getattr(a, "wait", True):
            return self._start_test_job()
        if self.budget.tests <= 0:
            self._event("budget_overrun", "test called with no tests left")
            return "No tests left; `submit` to end the episode.", False, {}, False
        if self.budget.compute_s <= 0:
            return "No compute budget left; `submit` to end the episode.", False, {}, False
        self.budget.tests -= 1
        self._tests_started += 1
        n = self._tests_started
        ws = self.workspace
        before = ws.editable_snapshot()
        # the agent's code as the final evaluation takes it (the pristine scaffold, its regions,
        # its created files), not the workspace: a file a command left there (a numpy.py beside
        # run.py) would run in the harness's place and forge the test's score
        copy = f"tests/test{n}-{uuid.uuid4().hex[:8]}"
        ranges = transplant(
            self.task,
            ws.region_texts(),
            ws.created_files(),
            self._episode_dir / copy,
            with_hidden=False,
        )
        runs = []
        try:
            for setting in self.task.visible_settings:
                with self._slot():
                    run = run_setting(
                        self.task,
                        self._sandbox,
                        copy,
                        setting,
                        self.task.spec.seeds.dev,
                        new_out_dir(self._episode_dir, f"test{n}-{setting.label}"),
                        ranges,
                    )
                self.budget.compute_s -= run.compute_s
                self._run_events(run)
                runs.append(run)
                if self.progress:
                    self.progress(setting.label, self.task.spec.seeds.dev, run)
        finally:
            shutil.rmtree(self._episode_dir / copy, ignore_errors=True)
        for e in ws.check_integrity(before, self._sandbox_uid()):
            self._event("fixed_file_restored", e)
        text, ok, info = self._test_result(n, runs, ws.region_texts(), ws.created_files())
        return text, ok, info, False

    def _test_result(self, n: int, runs: list[SettingRun], regions, created):
        """Score a finished test (blocking or background): record it, say what it did."""
        result = score_runs(self.task, runs, self.task.anchors())
        score = result.score
        self.tests.append({"n": n, "score": score, "regions": regions, "created": created})
        self.tests.sort(key=lambda t: t["n"])  # background tests can finish out of order
        if self.config.dense_reward and score is not None:
            self._bonus += self.config.dense_reward * max(0.0, score - self._best_visible)
            self._best_visible = max(self._best_visible, score)
        lines = [f"Test {n} (visible settings, seed {self.task.spec.seeds.dev}):"]
        for run in runs:
            sc = result.setting_scores.get(run.label)
            if run.error:
                lines.append(f"- {run.label}: FAILED ({run.error}), score 0")
                if run.log_tail:
                    lines.append("  log tail:\n" + _indent(run.log_tail[-1500:]))
            else:
                ms = ", ".join(f"{k}={v:.6g}" for k, v in run.metrics.items())
                lines.append(f"- {run.label}: {ms}; score {_fmt_score(sc)}")
        lines.append(
            f"Score over visible settings: {_fmt_score(score)}"
            + (f" ({result.reason})" if result.reason else "")
        )
        info = {
            "metrics": {r.label: r.metrics for r in runs},
            "errors": {r.label: r.error for r in runs if r.error},
            "setting_scores": result.setting_scores,
            "score": score,
            "test": n,
        }
        return "\n".join(lines), all(r.error is None for r in runs), info

    def _submit(self, a: SubmitArgs):
        ws = self.workspace
        if a.test is not None:
            chosen = next((t for t in self.tests if t["n"] == a.test), None)
            job = next((j for j in self._jobs.values() if j.test == a.test), None)
            if chosen is None and job is not None and job.running:
                raise MLSBenchError(
                    f"test {a.test} is still running (job {job.id}); wait for it first "
                    f'({{"tool": "jobs", "args": {{"action": "wait", "id": {job.id}}}}})'
                )
            if chosen is None:
                raise ActionError(f"no test number {a.test}; tests run so far: {len(self.tests)}")
            regions, created, what = chosen["regions"], chosen["created"], f"test {a.test}"
        else:
            regions, created, what = ws.region_texts(), ws.created_files(), "the current code"
        for rel in ws.fixed_unchanged():
            self._event("fixed_region_changed", f"{rel}: fixed lines differ from the scaffold")
        cancelled = self._cancel_jobs()
        info = self._final(regions, created)
        lines = [
            f"Submitted {what}. Final evaluation (all settings x seeds {list(info['seeds'])}):"
        ]
        if cancelled:
            info["cancelled_jobs"] = cancelled
            lines.insert(0, _cancel_note(cancelled))
        for label, m in info["metrics"].items():
            err = info["errors"].get(label)
            sc = info["setting_scores"].get(label)
            desc = f"FAILED ({err})" if err else ", ".join(f"{k}={v:.6g}" for k, v in m.items())
            lines.append(f"- {label}: {desc}; score {_fmt_score(sc)}")
        lines.append(
            f"Final score: {_fmt_score(info['score'])} +- "
            f"{_fmt_score(info['score_spread'])} over seeds"
            + (f" ({info['reason']})" if info.get("reason") else "")
        )
        if info.get("vanilla_score") is not None:
            lines.append(
                f"(your first test scored {_fmt_score(info['vanilla_score'])} on the "
                "visible settings)"
            )
        return "\n".join(lines), info.get("score") is not None, info, True

    def _validate(self, a: ValidateArgs):
        comp = self.task.spec.competition
        rel, path = self.workspace.resolve(a.path or comp.submission)
        ok, message = validate_submission(self.task, path)
        return (f"{rel}: valid. {message}" if ok else message), ok, {}, False

    def _submit_competition(self):
        comp = self.task.spec.competition
        _, path = self.workspace.resolve(comp.submission)
        with tempfile.TemporaryDirectory(dir=self._episode_dir) as work:
            runs = grade_submission(self.task, path, Path(work))
        result = score_runs(self.task, runs, self.task.anchors())
        for run in runs:
            self._run_events(run)
        info = final_info(result, runs, self.task, seeds=[0], vanilla_score=None)
        info["isolation"] = self.isolation
        info["agent_isolation"] = self.agent_isolation
        info["medal"] = medal_of(self.task, runs)
        lines = [f"Submitted {comp.submission}. Graded on the private test splits:"]
        for r in runs:
            sc = _fmt_score(result.setting_scores.get(r.label))
            desc = (
                f"FAILED ({r.error})"
                if r.error
                else ", ".join(f"{k}={v:.6g}" for k, v in r.metrics.items())
            )
            lines.append(f"- {r.label}: {desc}; score {sc}")
        lines.append(
            f"Final score: {_fmt_score(result.score)}"
            + (f" ({result.reason})" if result.reason else "")
            + (f"; medal: {info['medal']}" if info["medal"] else "")
        )
        return "\n".join(lines), result.score is not None, info, True

    def _final(self, regions, created) -> dict:
        seeds = list(self.config.final_seeds or self.task.spec.seeds.final)
        c = self.config
        hidden = (Path(c.runs_dir).resolve(),) if c.runs_dir else ()
        with self._slot():
            result: FinalResult = final_evaluation(
                self.task,
                regions,
                created,
                backend=c.sandbox,
                seeds=seeds,
                work_root=self._episode_dir.parent,
                hidden_extra=hidden,
                progress=self.progress,
                gpus=c.gpus,
            )
        for run in result.runs:
            self._run_events(run)
        vanilla = self.tests[0]["score"] if self.tests else None
        info = final_info(result, result.runs, self.task, seeds=seeds, vanilla_score=vanilla)
        info["isolation"] = self.isolation
        info["agent_isolation"] = self.agent_isolation
        return info

    # ------------------------------------------------------------------ background tests
    def _slot(self):
        """Hold one machine-wide experiment slot (``max_experiments``) around a command."""
        return self._slots.hold() if self._slots else contextlib.nullcontext()

    def _start_test_job(self):
        if self.budget.tests <= 0:
            self._event("budget_overrun", "test called with no tests left")
            return "No tests left; `submit` to end the episode.", False, {}, False
        if self.budget.compute_s <= 0:
            return "No compute budget left; `submit` to end the episode.", False, {}, False
        running = [j for j in self._jobs.values() if j.running]
        if len(running) >= self.config.max_jobs:
            ids = ", ".join(str(j.id) for j in running)
            return (
                f"{len(running)} background test(s) already running (jobs {ids}; max_jobs="
                f"{self.config.max_jobs}): wait for one or cancel one with `jobs` first.",
                False,
                {"jobs": [j.status() for j in self._jobs.values()]},
                False,
            )
        self.budget.tests -= 1
        self._tests_started += 1
        n, ws, c = self._tests_started, self.workspace, self.config
        job_id = max(self._jobs, default=0) + 1
        root = self._episode_dir / "jobs" / f"job{job_id}-{uuid.uuid4().hex[:8]}"
        # the code as it is now, as the final evaluation takes it (later edits do not leak into
        # the running test, and no file a command left in the workspace runs in it)
        ranges = transplant(
            self.task,
            ws.region_texts(),
            ws.created_files(),
            root / "workspace",
            with_hidden=False,
        )
        (root / "out").mkdir()
        # its fixed files are read-only to the job's commands (one setting cannot change them
        # for the next)
        fixed = [root / "workspace" / rel for rel in ws.pristine if rel not in ws.ranges]
        settings = {s.label: s for s in self.task.visible_settings}
        seed = self.task.spec.seeds.dev
        hidden = (Path(c.runs_dir).resolve(),) if c.runs_dir else ()
        hidden += (self._episode_dir.parent.resolve(),)
        job = TestJob(job_id, n, list(settings), ws.region_texts(), ws.created_files())

        def make(where: Path):
            config = sandbox_config(self.task, where, hidden, c.gpus, read_only=fixed)
            return make_sandbox(c.sandbox, config)

        def run_one(sandbox, label: str, where: Path) -> SettingRun:
            out = new_out_dir(where, f"test{n}-{label}")
            return run_setting(self.task, sandbox, "workspace", settings[label], seed, out, ranges)

        job.start(root, make, run_one, lambda: self.budget.compute_s, self._slots)
        self._jobs[job_id] = job
        text = (
            f"Test {n} started in the background as job {job_id} on a copy of the current code "
            f"(settings: {', '.join(settings)}). Keep working; "
            f'{{"tool": "jobs", "args": {{"action": "wait", "id": {job_id}}}}} waits for it.'
        )
        return text, True, {"job": job_id, "test": n}, False

    def _collect_jobs(self) -> None:
        """Bill what background jobs used; score the ones that finished (episode thread only)."""
        for job in self._jobs.values():
            used = job.used_s
            if used > job.billed_s:
                self.budget.compute_s -= used - job.billed_s
                job.billed_s = used
            if job.running or job.result is not None:
                continue
            for run in job.runs:
                self._run_events(run)
                if self.progress:
                    self.progress(run.label, run.seed, run)
            if job.state == "done" and len(job.runs) == len(job.settings):
                text, _, info = self._test_result(job.test, job.runs, job.regions, job.created)
                info["job"] = job.id
                job.result = {"text": f"Job {job.id} finished. {text}", "info": info}
            else:
                why = f": {job.error}" if job.error else ""
                job.result = {
                    "text": f"Job {job.id} (test {job.test}) {job.state}{why}; no score.",
                    "info": {"job": job.id, "test": job.test, "state": job.state},
                }

    def _cancel_jobs(self) -> list[int]:
        running = [j for j in self._jobs.values() if j.running]
        for job in running:
            job.cancel()
        for job in running:
            job.wait(60)
        self._collect_jobs()
        for job in running:
            job.shown = True  # the caller's observation says they were cancelled
        return [j.id for j in running]

    def _jobs_tool(self, a: JobsArgs):
        jobs = self._jobs
        if a.id is not None and a.id not in jobs:
            known = ", ".join(str(i) for i in jobs) or "none yet"
            raise MLSBenchError(f"no job {a.id}; jobs so far: {known}")
        chosen = [jobs[a.id]] if a.id is not None else list(jobs.values())
        notes = []
        if a.action == "cancel":
            stopped = [j for j in chosen if j.running]
            for job in stopped:
                job.cancel()
            for job in stopped:
                job.wait(60)
            ids = ", ".join(str(j.id) for j in stopped)
            notes.append(f"Cancelled job(s) {ids}." if stopped else "No running job to cancel.")
        elif a.action == "wait":
            t0 = time.monotonic()
            for job in chosen:
                left = None if a.timeout is None else max(0.0, a.timeout - time.monotonic() + t0)
                job.wait(left)
            still = [str(j.id) for j in chosen if j.running]
            if still:
                notes.append(f"Still running after {a.timeout:g} s: job(s) {', '.join(still)}.")
        self._collect_jobs()
        lines = [*notes, "Jobs:" if jobs else "No background jobs (start one: test wait=false)."]
        lines += [j.line() for j in jobs.values()]
        show = [
            j
            for j in chosen
            if j.result is not None and (not j.shown or (a.id is not None and a.action != "cancel"))
        ]
        for job in show:
            lines += ["", job.result["text"]]
            job.shown = True
        info: dict[str, Any] = {"jobs": [j.status() for j in jobs.values()]}
        if show:
            info["tests"] = [j.result["info"] for j in show]
        return "\n".join(lines), True, info, False

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> EpisodeSnapshot:
        """The episode's state now (workspace files, edits and their undo history, budgets,
        test history, events, finished background jobs), in memory; see ``restore``. Refused
        while background tests run (wait for or cancel them first)."""
        if self._episode_dir is None:
            raise MLSBenchError(
                "nothing to snapshot: the env was never reset, or is closed (an EnvPool closes "
                "an episode when it ends); snapshot before the last step, or call reset()"
            )
        self._collect_jobs()
        running = [str(j.id) for j in self._jobs.values() if j.running]
        if running:
            raise MLSBenchError(
                f"background job(s) {', '.join(running)} are still running; wait for or cancel "
                "them (the `jobs` tool) before snapshot()"
            )
        log = None
        if self._log is not None and not self._log._f.closed:
            log = (str(self._log.path), self._log._f.tell())
        state = {
            "tests": self.tests,
            "events": self.events,
            "jobs": {i: j.frozen() for i, j in self._jobs.items()},
            "tests_started": self._tests_started,
            "best_visible": self._best_visible,
            "step_count": self.step_count,
            "done": self._done,
            "last_obs": self._last_obs,
            "np_random": self._np_random,
        }
        return EpisodeSnapshot(
            id=uuid.uuid4().hex[:12],
            task=self.task.id,
            workspace=self.workspace.capture(),
            budget=dataclasses.replace(self.budget),
            state=copy.deepcopy(state),
            log=log,
        )

    def restore(self, snap: EpisodeSnapshot) -> str:
        """Put the episode back in ``snap``'s state and return its last observation. Works on
        any env of the same task: one without a live episode starts one first. Running
        background jobs are cancelled. The trajectory gets a ``restore`` record naming where
        the snapshot's history is logged, so exports follow each branch."""
        if snap.task != self.task.id:
            raise MLSBenchError(f"a snapshot of task {snap.task!r} cannot restore {self.task.id!r}")
        if self._episode_dir is None or self._sandbox is None:
            self.reset()
        self._cancel_jobs()
        self.workspace.restore(snap.workspace, owner=self._sandbox_uid())
        st = copy.deepcopy(snap.state)
        self.budget = dataclasses.replace(snap.budget)
        self.tests, self.events, self._jobs = st["tests"], st["events"], st["jobs"]
        self._tests_started, self._best_visible = st["tests_started"], st["best_visible"]
        self.step_count, self._done, self._last_obs = st["step_count"], st["done"], st["last_obs"]
        self._np_random, self._bonus = st["np_random"], 0.0
        if self._log is not None and self._log._f.closed and not self._done:
            self._log._f = open(self._log.path, "a", encoding="utf-8")  # noqa: SIM115
        self.record(
            {
                "type": "restore",
                "snapshot": snap.id,
                "step": self.step_count,
                "from_log": snap.log[0] if snap.log else None,
                "from_offset": snap.log[1] if snap.log else None,
            }
        )
        return self._last_obs

    # ------------------------------------------------------------------ helpers
    def _sandbox_uid(self) -> int | None:
        return getattr(self._sandbox, "uid", None)

    def _exhausted(self) -> str | None:
        if self.budget.steps <= 0:
            return "max_steps"
        if self.budget.compute_s <= 0:
            return "compute_s"
        if self._deadline is not None and time.monotonic() > self._deadline:
            return "wall_s"
        return None

    def _footer(self) -> str:
        b = self.budget
        tests = "" if self.task.is_competition else f"tests left {b.tests} | "
        line = f"[budget] steps left {b.steps} | {tests}compute left {max(b.compute_s, 0):.0f} " + (
            f"GPU-s ({self.config.gpus} GPUs)" if self.config.gpus else "s"
        )
        if self.task.spec.budgets.wall_s:  # the limit, not what is left: info stays replayable
            line += f" | wall-clock limit {self.task.spec.budgets.wall_s:.0f}s from reset"
        running = [f"job {j.id}" for j in self._jobs.values() if j.running]
        unseen = [f"job {j.id}" for j in self._jobs.values() if j.result and not j.shown]
        parts = [f"running: {', '.join(running)}"] if running else []
        if unseen:
            parts.append(f"finished, not shown yet: {', '.join(unseen)} (`jobs` shows them)")
        return line + ("\n[jobs] " + "; ".join(parts) if parts else "")

    def _run_events(self, run: SettingRun) -> None:
        for v in run.policy_violations:
            self._event("policy_violation", v)
        if run.error and run.error.startswith("grader rejected"):
            self._event("artifact_rejected", f"{run.label} seed {run.seed}: {run.error}")

    def _event(self, kind: str, detail: str) -> None:
        self.events.append({"step": self.step_count, "kind": kind, "detail": detail})

    def _open_log(self, seed: int | None) -> None:
        c = self.config
        if not c.runs_dir:
            self._log = None
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = (
            Path(c.runs_dir) / f"{stamp}-{self.task.id}-{c.agent_name}-{uuid.uuid4().hex[:6]}"
        )
        self._log = TrajectoryLog(
            self.run_dir / "trajectory.jsonl",
            {
                "task": self.task.id,
                "task_version": self.task.spec.version,
                "gym_id": self.task.gym_id,
                "task_hash": self.task.content_hash(),
                "anchors_hash": self.task.content_hash("anchors.json")
                if (self.task.root / "anchors.json").exists()
                else None,
                "config": self.config.model_dump(),
                "seed": seed,
                "agent": c.agent_name,
                "tools": self.tool_names,
            },
        )

    def _record(self, record: dict) -> None:
        if self._log:
            self._log.write(record)

    def record(self, record: dict) -> None:
        """Append ``record`` to this episode's trajectory (agents log their model calls here).
        After the episode's end record it still appends (an agent's closing totals)."""
        if self._log is not None and not self._done:
            self._record(record)
        elif self.run_dir is not None and (self.run_dir / "trajectory.jsonl").is_file():
            with open(self.run_dir / "trajectory.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=str) + "\n")

    def _finish(self, reward: float, status: str, info: dict) -> None:
        self._done = True
        self._record(
            {
                "type": "end",
                "status": status,
                "reward": reward,
                "score": info.get("score"),
                "vanilla_score": info.get("vanilla_score"),
                "steps": self.step_count,
                "tests_used": len(self.tests),
                "tamper_report": self.events,
                "diff": self.workspace.diff(),
                # what `mlsbench rescore` re-evaluates on today's scaffold: the editable
                # regions ([file, index, text]) of the current code and of each test's code
                "seeds": info.get("seeds"),
                "code": {
                    "regions": [[*k, t] for k, t in self.workspace.region_texts().items()],
                    "created": self.workspace.created_files(),
                },
                "test_code": [
                    {
                        "n": t["n"],
                        "regions": [[*k, x] for k, x in t["regions"].items()],
                        "created": t["created"],
                    }
                    for t in self.tests
                ],
            }
        )
        if self._log:
            self._log.close()

    def _teardown(self, wait: bool = True) -> None:
        for job in self._jobs.values():
            job.cancel()  # its thread removes its folder; the episode folder goes below
        sandbox, episode_dir = self._sandbox, self._episode_dir
        self._sandbox, self._episode_dir = None, None
        if self._log is not None:
            if not self._done:
                self._record({"type": "end", "status": "abandoned", "steps": self.step_count})
            self._log.close()
            self._log = None

        def release():
            if sandbox is not None:
                sandbox.close()
            if episode_dir is not None:
                shutil.rmtree(episode_dir, ignore_errors=True)

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


def _cancel_note(ids: list[int]) -> str:
    return (
        f"Cancelled {len(ids)} running background job(s) ({', '.join(map(str, ids))}): an "
        "episode does not end with experiments running."
    )


def _fmt_score(x) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _cap(text: str) -> str:
    limit = MAX_OBS_CHARS - 200
    return text if len(text) <= limit else text[:limit] + "\n[... observation truncated ...]"


def _truncate_tokens(text: str, max_tokens: int) -> str:
    if len(text) > max_tokens:  # shorter text holds at most max_tokens tokens
        from mlsbench_env.env import tokens

        if tokens.encoding() is not None:  # tiktoken, loaded offline (see tokens.py)
            return tokens.truncate_middle(text, max_tokens)
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return (
        text[:half] + f"\n[... output truncated: {cut} characters (~{cut // CHARS_PER_TOKEN} "
        f"tokens) omitted; the observation budget is {max_tokens} tokens ...]\n" + text[-half:]
    )


def _jsonable(action):
    return action if isinstance(action, str | dict) else repr(action)
