"""The record check every kit task's grader runs first (mlsbench_env.evaluation.kit_result),
on records a harness parent could write and on forged or broken ones."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

SPEC = {"n": 10}
HIDDEN_SPEC = {"n": 20}
# what a task's fixed module offers the grader: the visible settings' specs and the public key
FIXED = SimpleNamespace(SETTINGS={"small": SPEC}, PUBLIC_KEY="public-key")


@pytest.fixture
def task_dir(tmp_path):
    hidden = tmp_path / "task" / "hidden"
    hidden.mkdir(parents=True)
    (hidden / "big.json").write_text(json.dumps(HIDDEN_SPEC))
    (hidden / "instance_key.txt").write_text("secret-key\n")
    return tmp_path / "task"


def _read(task_dir, out_dir, record, setting="small", seed=0):
    (out_dir / "result.json").write_text(json.dumps(record))
    return read_kit_result(setting, seed, out_dir, task_dir, FIXED, {"big": "big.json"})


def test_a_matching_record_gives_the_instance_key(task_dir, tmp_path):
    run = _read(
        task_dir,
        tmp_path,
        {"setting": "small", "seed": 3, "spec": SPEC, "instance": "public", "acc": 0.5},
        seed=3,
    )
    assert (run.name, run.spec, run.key) == ("small", SPEC, "public-key")
    run.check_reported("acc", 0.5)
    with pytest.raises(ValueError, match="acc recomputed from the run's outputs is 0.25"):
        run.check_reported("acc", 0.25)
    final = _read(
        task_dir,
        tmp_path,
        {"setting": "big.json", "seed": 1, "spec": HIDDEN_SPEC, "instance": "final"},
        setting="big",
        seed=1,
    )
    assert (final.name, final.key) == ("big.json", "secret-key")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"setting": "small", "seed": 1, "spec": SPEC, "instance": "public"}, "seed 1, expected"),
        ({"setting": "small", "seed": 0, "spec": {"n": 5}, "instance": "public"}, "with spec"),
        ({"setting": "big.json", "seed": 0, "spec": SPEC, "instance": "public"}, "is for 'big"),
        ({"setting": "small", "seed": 0, "spec": SPEC, "instance": "mine"}, "unknown instance"),
        ({"error": "the calibrator raised"}, "the run failed: the calibrator raised"),
    ],
)
def test_forged_or_failed_records_are_refused_with_a_message(task_dir, tmp_path, record, message):
    with pytest.raises(ValueError, match=message):
        _read(task_dir, tmp_path, record)


def test_missing_or_broken_files_say_what_is_missing(task_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown setting 'other'; known: \\['big', 'small'\\]"):
        read_kit_result("other", 0, tmp_path, task_dir, FIXED, {"big": "big.json"})
    with pytest.raises(FileNotFoundError, match="no result.json"):
        read_kit_result("small", 0, tmp_path, task_dir, FIXED, {})
    (tmp_path / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_kit_result("small", 0, tmp_path, task_dir, FIXED, {})
    run = _read(
        task_dir, tmp_path, {"setting": "small", "seed": 0, "spec": SPEC, "instance": "public"}
    )
    with pytest.raises(FileNotFoundError, match="no pred.npy: the harness wrote no predictions"):
        run.array("pred.npy", "predictions")
    np.save(tmp_path / "pred.npy", np.arange(3))
    assert run.array("pred.npy", "predictions").tolist() == [0, 1, 2]


def test_private_modules_do_not_stay_in_sys_modules(tmp_path):
    import sys

    (tmp_path / "m.py").write_text(
        "import dataclasses\n@dataclasses.dataclass\nclass A:\n    x: int = 1\nVALUE = A().x\n"
    )
    module = private_module(tmp_path / "m.py", "_test_kit_result_m")
    assert module.VALUE == 1 and "_test_kit_result_m" not in sys.modules
