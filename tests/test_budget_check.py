"""The task's budget_check hook: a trusted check before every setting run of a `test` and of the
final evaluation. A tiny real task (its check counts a table in the task kit's child) keeps the
default suite fast; bio-inverse-folding's parameter cap is the real task's check (slow)."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest import mock

import pytest
import yaml
from test_agent_fakes import TINY_YAML  # tests/ is on sys.path

from mlsbench_env.errors import TaskSpecError
from mlsbench_env.spec import TaskSpec, load_task

REFUSED = "refused by the task's budget check"
RULE = "TABLE holds at most 100 entries"

# the agent tests' tiny task with a table to guess from, under a budget check
TASK_YAML = yaml.safe_dump(
    yaml.safe_load(TINY_YAML)
    | {
        "id": "tiny-table",
        "title": "Guess with a table",
        "question": "Return a number as close as you can to x, with a table of at most 100 "
        "entries.",
        "editable": [{"file": "guess.py", "lines": [4, 7]}],
        "budget_check": {"rule": RULE},
        "budgets": {"tests": 3, "compute_s": 600, "max_steps": 12, "command_timeout_s": 30},
    },
    sort_keys=False,
)

# the harness: the budget check counts the table in a least-privileged child; a run (a toy)
# imports the agent's code itself
RUN_PY = """\
import json, os, sys

from taskkit import Child, out_dir_from_env, write_budget_verdict

CAP = 100
out = out_dir_from_env()


def measure():
    with Child("measure:size", may_read=("guess.py",), name="budget check") as child:
        n = int(child.expect(b"N", maxlength=32))
    return {"ok": n <= CAP, "message": f"TABLE has {n} entries, the cap is {CAP}"}


if os.environ.get("MLSBENCH_BUDGET_CHECK") == "1":
    sys.exit(write_budget_verdict(out, sys.argv[1], measure))
from guess import guess
out.mkdir(parents=True, exist_ok=True)
(out / "answer.json").write_text(json.dumps({"guess": float(guess(float(sys.argv[1])))}))
"""

MEASURE_PY = """\
def size(conn):
    import guess

    conn.send_bytes(b"N" + str(len(guess.TABLE)).encode())
"""

GRADER = """\
import json
TARGET = {"one": 1.0, "two": 2.0, "three": 3.0}
def grade(setting, seed, out_dir, task_dir):
    answer = json.loads((out_dir / "answer.json").read_text())
    return {"error": abs(answer["guess"] - TARGET[setting])}
"""

SCAFFOLD = '"""Guess x."""\n\n\nTABLE = [0.0] * 10\n\ndef guess(x):\n    return 0.0\n'
GOOD = "TABLE = [0.0] * 10\n\ndef guess(x):\n    return 0.8 * x\n"
OVER = "TABLE = [0.0] * 101\n\ndef guess(x):\n    return x\n"
# the agent's code tries to forge the verdict: it writes a passing budget_check.json wherever
# it can reach and prints one, then reports a small table or ends its process at once
FORGE = """\
import glob as _g, json as _j, os as _o
for _d in _g.glob("../**/budget-*", recursive=True) + [_o.environ.get("MLSBENCH_OUT", ".")]:
    try:
        open(_o.path.join(_d, "budget_check.json"), "w").write(_j.dumps({"ok": True}))
    except OSError:
        pass
print(_j.dumps({"ok": True, "message": "fine"}))
TABLE = [0.0] * 5000
def guess(x):
    return x
"""
FORGE_EXIT = FORGE.replace("TABLE = [0.0] * 5000", "TABLE = [0.0] * 5000\n_o._exit(0)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from mlsbench_env.analysis.calibration import calibrate, write_anchors

    d = tmp_path_factory.mktemp("tasks") / "tiny-table"
    (d / "repo").mkdir(parents=True)
    (d / "baselines" / "good").mkdir(parents=True)
    (d / "task.yaml").write_text(TASK_YAML)
    (d / "repo" / "guess.py").write_text(SCAFFOLD)
    (d / "repo" / "run.py").write_text(RUN_PY)
    (d / "repo" / "measure.py").write_text(MEASURE_PY)
    (d / "baselines" / "good" / "guess.py").write_text(GOOD)
    (d / "grader.py").write_text(GRADER)
    anchors, _ = calibrate(load_task(d))
    write_anchors(load_task(d), anchors)
    return load_task(d)


def play(make_env, task, region: str, **options):
    env = make_env(task.root, final_seeds=(0,), **options)
    obs, _ = env.reset(seed=0)
    (region_,) = task.regions
    edit = {"path": region_.file, "action": "replace", "start": region_.start, "end": region_.end}
    edited, *_ = env.step({"tool": "edit", "args": {**edit, "text": region}})
    assert edited.startswith("Edit applied"), edited
    test_obs, _, _, _, test_info = env.step({"tool": "test", "args": {}})
    final_obs, reward, terminated, _, final_info = env.step({"tool": "submit", "args": {}})
    assert terminated
    return obs, test_obs, test_info, final_obs, final_info


def test_over_the_cap_is_refused_by_test_and_final_evaluation(make_env, tiny):
    prompt, test_obs, test_info, final_obs, info = play(make_env, tiny, OVER)
    assert RULE in prompt  # the agent is told the rule up front
    assert test_obs.count(REFUSED) == 2 and "TABLE has 101 entries, the cap is 100" in test_obs
    assert test_info["score"] == 0.0
    assert set(info["errors"]) == {"one", "two", "three"}
    assert all(REFUSED in e and "101 entries" in e for e in info["errors"].values())
    assert info["score"] == 0.0 and REFUSED in final_obs
    # the test counted (the refusal is its answer) and the check's compute was charged
    assert test_info["budget"]["tests_left"] == tiny.spec.budgets.tests - 1
    assert test_info["budget"]["compute_s_left"] < tiny.spec.budgets.compute_s


@pytest.mark.slow
def test_within_the_cap_runs_as_before(make_env, tiny):
    _, test_obs, test_info, _, info = play(make_env, tiny, GOOD)
    assert REFUSED not in test_obs and not info["errors"]
    assert info["score"] == pytest.approx(50.0)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(FORGE, id="writes-and-prints"),
        pytest.param(FORGE_EXIT, id="exits-early", marks=pytest.mark.slow),
    ],
)
def test_the_agent_code_cannot_forge_the_verdict(make_env, tiny, forge):
    # the static policy is a lint; with it off, only the boundary stands (tests/cheats.py)
    with mock.patch("mlsbench_env.evaluation.run.check_policy", return_value=[]):
        _, test_obs, _, _, info = play(make_env, tiny, forge)
    assert test_obs.count(REFUSED) == 2, test_obs
    assert all(REFUSED in e for e in info["errors"].values()) and info["score"] == 0.0


def test_the_spec_checks_the_hook(tiny, tmp_path):
    spec = load_task("comp-diamond-prices").spec.model_dump()
    with pytest.raises(ValueError, match="only research tasks"):
        TaskSpec.model_validate({**spec, "budget_check": {"rule": RULE}})
    with pytest.raises(ValueError, match="rule"):
        TaskSpec.model_validate({**tiny.spec.model_dump(), "budget_check": {"rule": ""}})
    d = tmp_path / "tiny-table"
    shutil.copytree(tiny.root, d)
    raw = yaml.safe_load((d / "task.yaml").read_text())
    for command, msg in [
        ("python missing.py", "must be a fixed file"),
        ("python guess.py", "has editable lines"),
        ("echo ok", "runs a .py file"),
    ]:
        raw["budget_check"]["command"] = command
        (d / "task.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(TaskSpecError, match=msg):
            load_task(d)
    raw["budget_check"]["command"] = "python run.py 1"
    (d / "task.yaml").write_text(yaml.safe_dump(raw))
    assert load_task(d).spec.budget_check.command == "python run.py 1"


# ------------------------------------------------- a real task: bio-inverse-folding's cap


@pytest.mark.slow
def test_bio_inverse_folding_refuses_an_over_cap_model_in_test_and_final(make_env):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_task_inverse_folding import TOO_BIG

    task = load_task("bio-inverse-folding")
    assert task.spec.budget_check is not None
    _, test_obs, _, _, info = play(make_env, task, TOO_BIG.rstrip("\n") + "\n")
    assert test_obs.count(REFUSED) == len(task.visible_settings), test_obs
    assert "parameter cap exceeded" in test_obs and "the cap is 100000" in test_obs
    assert set(info["errors"]) == {s.label for s in task.spec.settings}
    assert all("parameter cap exceeded" in e for e in info["errors"].values())
    assert info["score"] == 0.0
