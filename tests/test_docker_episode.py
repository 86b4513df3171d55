"""Whole episodes with sandbox="docker" give the score that `local` gives for the same
submission and seed (marked docker; every task: docker and slow)."""

import pytest
from test_sandbox_conformance import require  # tests/ is on sys.path under pytest

from mlsbench_env.env import ResearchEnv
from mlsbench_env.episode import BaselineAgent, run_episode
from mlsbench_env.evaluation import final_evaluation, pipeline_evaluation
from mlsbench_env.spec import builtin_task_ids, load_task

pytestmark = pytest.mark.docker
FIRST = "opt-evolution-strategy"


def play_and_compare(task_id, tmp_path, seeds=(0,)):
    require("docker")
    task = load_task(task_id)
    agent = BaselineAgent(task, task.spec.reference_baseline)
    env = ResearchEnv(
        task,
        sandbox="docker",
        final_seeds=seeds,
        runs_dir=str(tmp_path / "runs"),
        work_dir=str(tmp_path / "eps"),
    )
    try:
        docker = run_episode(env, agent, seed=0)
        submitted = None if task.is_competition else env.tests[-1]
    finally:
        env.close()
    assert docker.terminated, docker.final_info
    info = docker.final_info
    assert not info["errors"], info["errors"]
    if task.is_competition:  # the pipeline ran in a docker shell (seed 0): run it locally
        files = task.baseline_files(task.spec.reference_baseline)
        local = pipeline_evaluation(task, files, seeds=[0], work_root=tmp_path)
    else:
        local = final_evaluation(
            task,
            submitted["regions"],
            submitted["created"],
            backend="local",
            seeds=list(seeds),
            work_root=tmp_path,
        )
    local_metrics = {(r.label, r.seed): r.metrics for r in local.runs}
    docker_metrics = {(r["label"], r["seed"]): r["metrics"] for r in info["final_runs"]}
    assert docker_metrics == local_metrics  # bit-for-bit: same packages, same code
    assert info["score"] == local.score
    return info


def test_first_task_scores_the_same_in_docker_and_local(tmp_path):
    play_and_compare(FIRST, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("task_id", [t for t in builtin_task_ids() if t != FIRST])
def test_every_task_scores_the_same_in_docker_and_local(task_id, tmp_path):
    play_and_compare(task_id, tmp_path)
