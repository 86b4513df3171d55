"""Shared by the tasks' cheat tests: run an edit of a task's single editable region on one
setting (seed 0) through the real final evaluation, in the real sandbox.

``lint=False`` runs it with the static policy switched off: the policy is a lint that explains,
the boundary is the sandbox and the task kit's least-privileged child, and a cheat test that
claims to check the boundary must not be stopped by the lint first."""

from __future__ import annotations

from contextlib import nullcontext
from unittest import mock

from mlsbench_env.evaluation import FinalResult, SettingRun, final_evaluation
from mlsbench_env.spec import Task


def run_setting(
    task: Task, label: str, text: str, *, lint: bool = True
) -> tuple[FinalResult, SettingRun]:
    setting = next(s for s in task.spec.settings if s.label == label)
    (region,) = task.regions
    no_lint = mock.patch("mlsbench_env.evaluation.check_policy", return_value=[])
    with nullcontext() if lint else no_lint:
        result = final_evaluation(
            task, {(region.file, region.index): text}, {}, seeds=[0], settings=[setting]
        )
    (run,) = result.runs
    return result, run


def run_cheat(task: Task, label: str, text: str, *, lint: bool = True) -> str:
    """The cheat must fail the setting with a message and score 0 there; returns the message."""
    result, run = run_setting(task, label, text, lint=lint)
    assert run.metrics is None, "the cheat was graded as a valid run"
    assert run.error, "the cheating run was not failed"
    assert result.setting_scores.get(label, 0.0) == 0.0
    return run.error
