"""The gymnasium environment: one research task per episode.

``reset()`` materializes a fresh workspace and sandbox; ``step(action)`` runs one tool; the
episode ends at ``submit`` (terminated) or when a budget runs out (truncated). Reward is 0 on
every step except the terminal one, which is the final score (0..100 x ``reward_scale``).

Measured usage (compute seconds) changes only on steps that ran commands, so ``info`` and the
observation are identical across two runs with the same seed and actions on steps that ran
nothing; durations live in the trajectory log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from mlsbench_env.errors import MLSBenchError, UnknownNameError
from mlsbench_env.evaluation import (
    FinalResult,
    SettingRun,
    final_evaluation,
    new_out_dir,
    run_setting,
    sandbox_config,
    score_runs,
)
from mlsbench_env.prompt import render_prompt
from mlsbench_env.sandbox import make_sandbox
from mlsbench_env.spec import Task, load_task
from mlsbench_env.tools import (
    TOOLS,
    ActionError,
    EditArgs,
    ShellArgs,
    SubmitArgs,
    UndoArgs,
    ViewArgs,
    parse_action,
    tool_schemas,
)
from mlsbench_env.trajectory import TrajectoryLog
from mlsbench_env.workspace import Workspace

MAX_OBS_CHARS = 400_000
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


class ResearchEnv(gym.Env):
    """A research task as a multi-turn text environment (see the module docstring)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: str | Path | Task, render_mode: str | None = None, **options):
        self.task = task if isinstance(task, Task) else load_task(task)
        self.config = EnvConfig(**options)
        self.render_mode = render_mode
        names = list(self.config.tools or TOOLS)
        for n in names:
            if n not in TOOLS:
                raise UnknownNameError("tool", n, list(TOOLS))
        if "submit" not in names:
            names.append("submit")
        self.tool_names = names
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
        root = Path(c.work_dir) if c.work_dir else Path(tempfile.gettempdir()) / "mlsbench-episodes"
        root.mkdir(parents=True, exist_ok=True)
        self._episode_dir = root / f"ep-{uuid.uuid4().hex[:12]}"
        self.workspace = Workspace(self.task, self._episode_dir / "workspace")
        (self._episode_dir / "out").mkdir()
        self.tests: list[dict] = []
        self.events: list[dict] = []
        self.step_count = 0
        self._done = False
        self._open_log(seed)
        hidden = (Path(c.runs_dir).resolve(),) if c.runs_dir else ()
        self._sandbox = make_sandbox(
            c.sandbox, sandbox_config(self.task, self._episode_dir, hidden)
        )
        obs = render_prompt(self.task, self.workspace, self.tool_names, self._footer())
        info = {
            "tool": None,
            "ok": True,
            "budget": self.budget.as_dict(),
            "tools": tool_schemas(self.tool_names),
            "task": self.task.id,
            "gym_id": self.task.gym_id,
        }
        self._record({"type": "reset", "seed": seed, "observation": obs})
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
        info: dict[str, Any] = {}
        reward, terminated = 0.0, False
        try:
            name, args = parse_action(action, self.tool_names)
        except ActionError as e:
            name, text, ok = None, f"Invalid action: {e}", False
        else:
            try:
                text, ok, info, terminated = self._dispatch(name, args)
            except MLSBenchError as e:
                text, ok = f"{name} failed: {e}", False
            except Exception as e:  # an env bug must not lose the episode: report and go on
                text, ok = f"{name} failed with an internal error: {type(e).__name__}: {e}", False
                self._event("internal_error", traceback.format_exc())
        if terminated:
            reward = float(info.get("score") or 0.0) * self.config.reward_scale
        truncated = False
        if not terminated:
            ran_out = self._exhausted()
            if ran_out:
                truncated = True
                text += f"\n\nBudget exhausted ({ran_out}): the episode is truncated."
                if self.config.submit_on_truncation:
                    last = self.tests[-1] if self.tests else None
                    what = f"test {last['n']}" if last else "the current code"
                    text += f" submit_on_truncation is set: evaluating {what}."
                    final_info = self._final(
                        last["regions"] if last else self.workspace.region_texts(),
                        last["created"] if last else self.workspace.created_files(),
                    )
                    info.update(final_info)
                    reward = float(final_info.get("score") or 0.0) * self.config.reward_scale
                    text += f"\nFinal score: {_fmt_score(final_info.get('score'))}"
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
            return self._test()
        if name == "submit":
            return self._submit(args)
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
        res = self._sandbox.exec(
            a.command,
            timeout=timeout,
            cwd="workspace",
            max_output_bytes=self.config.obs_max_tokens * CHARS_PER_TOKEN * 4,
        )
        self.budget.compute_s -= res.wall_s
        events = self.workspace.check_integrity(before)
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

    def _test(self):
        if self.budget.tests <= 0:
            self._event("budget_overrun", "test called with no tests left")
            return "No tests left; `submit` to end the episode.", False, {}, False
        if self.budget.compute_s <= 0:
            return "No compute budget left; `submit` to end the episode.", False, {}, False
        self.budget.tests -= 1
        n = len(self.tests) + 1
        ws = self.workspace
        before = ws.editable_snapshot()
        ranges = {
            f: [(r.start, r.end) for r in ws.editable_ranges(f)]
            for f in [*ws.ranges, *sorted(ws.created)]
        }
        runs = []
        for setting in self.task.visible_settings:
            run = run_setting(
                self.task,
                self._sandbox,
                "workspace",
                setting,
                self.task.spec.seeds.dev,
                new_out_dir(self._episode_dir, f"test{n}-{setting.label}"),
                ranges,
            )
            self.budget.compute_s -= run.wall_s
            self._run_events(run)
            runs.append(run)
            if self.progress:
                self.progress(setting.label, self.task.spec.seeds.dev, run)
        for e in ws.check_integrity(before):
            self._event("fixed_file_restored", e)
        result = score_runs(self.task, runs, self.task.anchors())
        score = result.score
        self.tests.append(
            {"n": n, "score": score, "regions": ws.region_texts(), "created": ws.created_files()}
        )
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
        return "\n".join(lines), all(r.error is None for r in runs), info, False

    def _submit(self, a: SubmitArgs):
        ws = self.workspace
        if a.test is not None:
            if not 1 <= a.test <= len(self.tests):
                raise ActionError(f"no test number {a.test}; tests run so far: {len(self.tests)}")
            chosen = self.tests[a.test - 1]
            regions, created, what = chosen["regions"], chosen["created"], f"test {a.test}"
        else:
            regions, created, what = ws.region_texts(), ws.created_files(), "the current code"
        for rel in ws.fixed_unchanged():
            self._event("fixed_region_changed", f"{rel}: fixed lines differ from the scaffold")
        info = self._final(regions, created)
        lines = [
            f"Submitted {what}. Final evaluation (all settings x seeds {list(info['seeds'])}):"
        ]
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

    def _final(self, regions, created) -> dict:
        seeds = list(self.config.final_seeds or self.task.spec.seeds.final)
        c = self.config
        hidden = (Path(c.runs_dir).resolve(),) if c.runs_dir else ()
        result: FinalResult = final_evaluation(
            self.task,
            regions,
            created,
            backend=c.sandbox,
            seeds=seeds,
            work_root=self._episode_dir.parent,
            hidden_extra=hidden,
            progress=self.progress,
        )
        for run in result.runs:
            self._run_events(run)
        metrics, errors = {}, {}
        for run in result.runs:
            if run.error:
                errors.setdefault(run.label, run.error)
            elif run.metrics:
                metrics.setdefault(run.label, {})
                for k, v in run.metrics.items():
                    metrics[run.label].setdefault(k, []).append(v)
        means = {label: {k: sum(v) / len(v) for k, v in m.items()} for label, m in metrics.items()}
        for s in self.task.spec.settings:
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
            "vanilla_score": self.tests[0]["score"] if self.tests else None,
            "final_runs": [r.record() for r in result.runs],
        }

    # ------------------------------------------------------------------ helpers
    def _exhausted(self) -> str | None:
        if self.budget.steps <= 0:
            return "max_steps"
        if self.budget.compute_s <= 0:
            return "compute_s"
        return None

    def _footer(self) -> str:
        b = self.budget
        return (
            f"[budget] steps left {b.steps} | tests left {b.tests} | "
            f"compute left {max(b.compute_s, 0):.0f} s"
        )

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


def _fmt_score(x) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _cap(text: str) -> str:
    limit = MAX_OBS_CHARS - 200
    return text if len(text) <= limit else text[:limit] + "\n[... observation truncated ...]"


def _truncate_tokens(text: str, max_tokens: int) -> str:
    if len(text) > max_tokens:  # shorter text holds at most max_tokens tokens
        from mlsbench_env import tokens

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
