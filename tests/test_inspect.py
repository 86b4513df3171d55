"""The inspect_ai task: inspect's own eval loop and mockllm model play an episode."""

import json
from pathlib import Path

import pytest
from test_agent_fakes import PERFECT, tiny_task_once

pytest.importorskip("inspect_ai", reason="needs the [inspect] extra")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, get_model  # noqa: E402

from mlsbench_env.env import ResearchEnv  # noqa: E402
from mlsbench_env.integrations.inspect_task import mlsbench  # noqa: E402

MODEL = "mockllm/model"
BAD_EDIT = {"tool": "edit", "args": {"path": "guess.py", "bogus": 1}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def scripted(actions):
    """inspect's mock model, replying with these tool calls in turn."""
    outputs = [ModelOutput.for_tool_call(MODEL, a["tool"], a["args"]) for a in actions]
    return get_model(MODEL, custom_outputs=outputs)


def run(tiny, tmp_path, actions, **task_args):
    task = mlsbench(
        task=str(tiny.root),
        runs_dir=str(tmp_path / "runs"),
        work_dir=str(tmp_path / "eps"),
        **task_args,
    )
    (log,) = inspect_eval(task, model=scripted(actions), log_dir=str(tmp_path / "logs"))
    assert log.status == "success", log.error
    assert not any((tmp_path / "eps").glob("ep-*")), "an episode's sandbox was left behind"
    return log


def test_inspect_eval_plays_an_episode_to_the_in_process_score(tiny, tmp_path):
    actions = [PERFECT[0], PERFECT[1], BAD_EDIT, *PERFECT[2:]]
    log = run(tiny, tmp_path, actions, final_seeds=[0])
    local = ResearchEnv(tiny, runs_dir=None, work_dir=str(tmp_path / "local"), final_seeds=(0,))
    try:
        local.reset(seed=0)
        for a in actions:
            obs, reward, *_, info = local.step(json.dumps(a))
    finally:
        local.close()
    # the log on disk records the score and its metadata
    (path,) = Path(tmp_path / "logs").glob("*.eval")
    (sample,) = read_eval_log(str(path)).samples
    score = sample.scores["mlsbench_scorer"]
    assert score.value == pytest.approx(info["score"]) == pytest.approx(reward)
    assert score.metadata["setting_scores"] == info["setting_scores"]
    assert score.metadata["tamper_report"] == [] and score.metadata["terminated"]
    assert set(score.metadata["isolation"]) >= {"network", "pid", "limits"}
    assert log.results.scores[0].metrics["mean"].value == pytest.approx(info["score"])
    # the tool results are the episode's observations; inspect checks arguments against our
    # schemas itself, so a bad call is answered by inspect and costs the episode no step
    tools = [m for m in sample.messages if m.role == "tool"]
    assert tools[2].error.type == "parsing" and "bogus" in tools[2].error.message
    assert "steps left 9" in tools[3].text  # view, edit, test: three steps of twelve
    # the trajectory names its harness
    (traj,) = Path(tmp_path / "runs").glob("*/trajectory.jsonl")
    records = [json.loads(line) for line in traj.read_text().splitlines()]
    assert any(r.get("framework") == "inspect_ai" and r.get("version") for r in records)


def test_an_episode_cut_by_inspect_scores_zero_and_leaves_nothing(tiny, tmp_path):
    """inspect's message limit ends the sample before submit: score 0 with a reason, and
    sample_cleanup removes the sandbox."""
    log = run(tiny, tmp_path, PERFECT[:2] * 5, message_limit=3, seeds="0,1")
    assert [s.id for s in log.samples] == [f"{tiny.id}-seed0", f"{tiny.id}-seed1"]
    for s in log.samples:
        score = s.scores["mlsbench_scorer"]
        assert score.value == 0.0 and "never submitted" in score.explanation


def test_inspect_cli_finds_the_task_and_sandbox_through_the_entry_point(tiny, tmp_path):
    """`inspect eval mlsbench_env/mlsbench` and the `mlsbench` sandbox type, from the package
    metadata alone."""
    import shutil
    import subprocess
    import sys
    from importlib.metadata import entry_points

    if "mlsbench" not in {e.name for e in entry_points(group="inspect_ai")}:
        pytest.skip("the entry point is installed with the package: pip install -e .")
    cli = shutil.which("inspect", path=str(Path(sys.executable).parent)) or shutil.which("inspect")
    ok = subprocess.run([cli, "sandbox", "cleanup", "mlsbench"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([cli, "sandbox", "cleanup", "nosuch"], capture_output=True, text=True)
    assert bad.returncode != 0 and "not recognized" in bad.stderr
    run = [cli, "eval", "mlsbench_env/mlsbench", "--model", MODEL, "--log-dir", str(tmp_path)]
    run += ["-T", f"task={tiny.root}", "-T", "message_limit=2", "-T", f"work_dir={tmp_path}/eps"]
    run += ["-T", f"runs_dir={tmp_path}/runs", "--display", "plain"]
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 0 and "mlsbench_scorer" in out.stdout, out.stdout + out.stderr
    assert list(tmp_path.glob("*.eval")) and not list(tmp_path.glob("eps/ep-*"))
