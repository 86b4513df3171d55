"""`mlsbench rescore`: the recorded submission re-evaluated on today's task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_matrix import PERFECT, make_guess_task
from typer.testing import CliRunner

from mlsbench_env.analysis.rescore import regions_from_diff, rescore_run, submitted_code
from mlsbench_env.cli import app
from mlsbench_env.env import ResearchEnv
from mlsbench_env.env.log import read_log
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.scale.store import ResultsStore


def edit(text: str) -> dict:
    return {
        "tool": "edit",
        "args": {"path": "guess.py", "action": "replace", "start": 5, "end": 5, "text": text},
    }


def play(task, tmp_path, actions) -> Path:
    env = ResearchEnv(
        task, runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"), final_seeds=(0,)
    )
    env.reset(seed=0)
    for a in actions:
        env.step(json.dumps(a))
    env.close()
    return env.run_dir


@pytest.fixture
def guess(tmp_path):
    return make_guess_task(tmp_path / "tasks")


def test_rescore_reproduces_the_recorded_score(guess, tmp_path):
    run = play(guess, tmp_path, PERFECT)
    r = rescore_run(run, tasks_dir=guess.root.parent)
    assert r["old_score"] == pytest.approx(100.0) and r["new_score"] == pytest.approx(100.0)
    assert r["seeds"] == [0] and r["error"] is None
    assert r["task_hash_then"] == r["task_hash_now"]


def test_the_submitted_test_is_rescored_not_the_last_code(guess, tmp_path):
    actions = [
        edit("    return 0.8 * x"),
        {"tool": "test", "args": {}},
        edit("    return x"),
        {"tool": "submit", "args": {"test": 1}},
    ]
    run = play(guess, tmp_path, actions)
    regions, _, what = submitted_code(read_log(run / "trajectory.jsonl"))
    assert what == "test 1" and regions == {("guess.py", 1): "    return 0.8 * x\n"}
    assert rescore_run(run, tasks_dir=guess.root.parent)["new_score"] == pytest.approx(50.0)


def test_an_old_trajectory_is_rescored_from_its_diff_on_a_shifted_scaffold(guess, tmp_path):
    run = play(guess, tmp_path, PERFECT)
    path = run / "trajectory.jsonl"
    records = read_log(path)
    for r in records:  # as written before the regions were recorded
        if r["type"] == "end":
            r.pop("code")
            r.pop("test_code")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # today's scaffold has two more fixed lines above the region
    repo = guess.root / "repo" / "guess.py"
    repo.write_text(
        '"""Return a number close to x."""\n\nimport math\n\n\ndef guess(x):\n    return 0.0\n'
    )
    yaml_path = guess.root / "task.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("- 5\n  - 5", "- 7\n  - 7"))
    from mlsbench_env.spec import load_task

    today = load_task(guess.root)
    assert today.regions[0].start == 7
    regions, _ = regions_from_diff(today, records[-1]["diff"])
    assert regions == {("guess.py", 1): "    return x\n"}
    r = rescore_run(run, tasks_dir=guess.root.parent)
    assert r["new_score"] == pytest.approx(100.0) and r["task_hash_now"] != r["task_hash_then"]


def test_a_diff_that_touches_fixed_lines_or_nothing_submitted_is_an_error(guess, tmp_path):
    bad = (
        "--- a/guess.py\n+++ b/guess.py\n@@ -4,2 +4,2 @@\n"
        "-def guess(x):\n+def g(x):\n     return 0.0\n"
    )
    with pytest.raises(MLSBenchError):
        regions_from_diff(guess, bad)
    run = play(guess, tmp_path, [{"tool": "view", "args": {"path": "guess.py"}}])
    r = rescore_run(run, tasks_dir=guess.root.parent)
    assert r["new_score"] is None and "nothing was submitted" in r["error"]


def test_cli_rescore_records_old_and_new_after_an_anchor_update(guess, tmp_path):
    run = play(guess, tmp_path, [edit("    return 0.8 * x"), {"tool": "submit", "args": {}}])
    store = ResultsStore(tmp_path / "s.sqlite")
    store.record_episode(
        {
            "cell_key": "k",
            "status": "ok",
            "task": guess.id,
            "agent": "a",
            "agent_hash": "h",
            "seed": 0,
            "trajectory": str(run),
        }
    )
    anchors = json.loads((guess.root / "anchors.json").read_text())
    for label in anchors["anchors"]:  # a stronger reference baseline: the same code scores less
        anchors["anchors"][label]["error"]["reference"] /= 2
    (guess.root / "anchors.json").write_text(json.dumps(anchors))
    args = ["rescore", "--store", str(tmp_path / "s.sqlite"), "--all"]
    r = CliRunner().invoke(app, [*args, "--tasks-dir", str(guess.root.parent)])
    assert r.exit_code == 0, r.output
    (row,) = ResultsStore(tmp_path / "s.sqlite").rescores()
    assert row["cell_key"] == "k" and row["old_score"] == pytest.approx(50.0)
    assert row["new_score"] < 50.0 and row["anchors_hash_then"] != row["anchors_hash_now"]
    assert "anchors" in r.output and "changed" in r.output
