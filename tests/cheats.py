"""Shared by the tasks' cheat tests: run an edit of a task's single editable region on one
setting (seed 0) through the real final evaluation, in the real sandbox.

``lint=False`` runs it with the static policy switched off: the policy is a lint that explains,
the boundary is the sandbox and the task kit's least-privileged child, and a cheat test that
claims to check the boundary must not be stopped by the lint first."""

from __future__ import annotations

from contextlib import nullcontext
from unittest import mock

import pytest

from mlsbench_env.evaluation import SettingRun, final_evaluation
from mlsbench_env.scoring import FinalResult
from mlsbench_env.spec import Task


def _evaluate(task: Task, regions: dict, labels: list[str], lint: bool) -> FinalResult:
    settings = [s for s in task.spec.settings if s.label in labels]
    no_lint = mock.patch("mlsbench_env.evaluation.run.check_policy", return_value=[])
    with nullcontext() if lint else no_lint:
        return final_evaluation(task, regions, {}, seeds=[0], settings=settings)


def run_setting(
    task: Task, label: str, text: str, *, lint: bool = True
) -> tuple[FinalResult, SettingRun]:
    (region,) = task.regions
    result = _evaluate(task, {(region.file, region.index): text}, [label], lint)
    (run,) = result.runs
    return result, run


def assert_anchored(
    task: Task, baseline: str, labels: list[str], *, rel: float = 1e-9, lint: bool = True
) -> None:
    """The honest-code control: ``baseline`` on ``labels`` (seed 0, one final evaluation)
    gives every metric its anchors hold for seed 0 (``rel=0``: exactly). A final evaluation
    sends the secrets and hidden/'s files only when a hidden setting is among its settings, as
    the calibration's did: name one where those change the numbers."""
    result = _evaluate(task, task.baseline_regions(baseline), labels, lint)
    anchors = task.anchors()["results"][baseline]
    assert sorted(run.label for run in result.runs) == sorted(labels)
    for run in result.runs:
        assert run.error is None, run.error
        for m in task.spec.metrics:
            want = pytest.approx(anchors[run.label][m.name][0], rel=rel, abs=1e-12 if rel else 0)
            assert run.metrics[m.name] == want, (run.label, m.name)


def run_cheat(task: Task, label: str, text: str, *, lint: bool = True) -> str:
    """The cheat must fail the setting with a message and score 0 there; returns the message."""
    result, run = run_setting(task, label, text, lint=lint)
    assert run.metrics is None, "the cheat was graded as a valid run"
    assert run.error, "the cheating run was not failed"
    assert result.setting_scores.get(label, 0.0) == 0.0
    return run.error
