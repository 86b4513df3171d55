"""Whole episodes through the CLI runner: the acceptance numbers of every shipped task.

Slow (each runs a final evaluation); `.ci/run` runs the first task's, `pytest -m slow` all."""

import pytest

from mlsbench_env.env import ResearchEnv
from mlsbench_env.episode import BaselineAgent, run_episode
from mlsbench_env.spec import builtin_task_ids, load_task

pytestmark = pytest.mark.slow


def play(task_id, baseline, tmp_path, seed=0):
    task = load_task(task_id)
    name = task.spec.reference_baseline if baseline == "strongest" else baseline
    env = ResearchEnv(task, runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"))
    try:
        return run_episode(env, BaselineAgent(task, name), seed=seed)
    finally:
        env.close()


def test_first_task_strongest_scores_50_and_reproduces(tmp_path):
    a = play("opt-evolution-strategy", "strongest", tmp_path)
    assert a.terminated and a.score == pytest.approx(50.0, abs=3.0)
    b = play("opt-evolution-strategy", "strongest", tmp_path)
    assert b.score == pytest.approx(a.score, abs=1e-9)
    assert a.vanilla_score is not None


def ran_everywhere(r) -> bool:
    """Every setting ran on every seed to metrics: a score near 0 from crashes proves nothing."""
    info = r.final_info
    runs = info.get("final_runs") or []
    return bool(runs) and not info.get("errors") and all(run.get("metrics") for run in runs)


def test_first_task_default_scores_near_zero(tmp_path):
    r = play("opt-evolution-strategy", "default", tmp_path)
    assert r.terminated and r.score == pytest.approx(0.0, abs=3.0)
    assert ran_everywhere(r), r.final_info.get("errors")


@pytest.mark.parametrize(
    "task_id", [t for t in builtin_task_ids() if t != "opt-evolution-strategy"]
)
def test_task_strongest_baseline_scores_50(task_id, tmp_path):
    r = play(task_id, "strongest", tmp_path)
    assert r.terminated and r.score == pytest.approx(50.0, abs=3.0), r.final_info.get("errors")


@pytest.mark.parametrize(
    "task_id", [t for t in builtin_task_ids() if t != "opt-evolution-strategy"]
)
def test_task_default_scores_near_zero(task_id, tmp_path):
    r = play(task_id, "default", tmp_path)
    assert r.terminated and r.score == pytest.approx(0.0, abs=3.0), r.final_info.get("errors")
    assert ran_everywhere(r), r.final_info.get("errors")
