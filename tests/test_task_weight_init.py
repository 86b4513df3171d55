"""dl-weight-initialization: the metric, the task's own cheats through the real final evaluation
with the static policy off (the kit's least-privileged child and the parent's checks are what
stop them), and an honest-code control.

The initializer runs in a child that sees no data and returns only the initial values (names,
shapes, float32 bytes); the parent checks them against a network it built, trains it with fixed
code and writes the test predictions, from which the grader recomputes the accuracy."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from cheats import run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = load_task("dl-weight-initialization")
QUICK = "digits-mlp20"
HIDDEN = "fashion-mlp40-tanh"


def _module(file):
    spec = importlib.util.spec_from_file_location(f"_wi_{file[:-3]}", TASK.repo / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grader():
    spec = importlib.util.spec_from_file_location("_wi_grader", TASK.root / "grader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def region_with(body: str, baseline: str | None = None) -> str:
    """The editable region (the default's, or ``baseline``'s) with ``body`` run first inside
    initialize()."""
    if baseline is None:
        (region,) = TASK.regions
        lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
        text = "".join(lines[region.start - 1 : region.end])
    else:
        text = (TASK.root / "baselines" / baseline / "init.py").read_text()
    head = "def initialize(model):\n"
    assert head in text
    start = text.index(head) + len(head)
    doc_end = text.index('"""', text.index('"""', start) + 3) + 4
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return text[:doc_end] + inner + text[doc_end:]


def test_the_grader_recomputes_the_accuracy_from_the_predictions(tmp_path):
    data, grader = _module("data.py"), _grader()
    spec = _module_settings()[QUICK]
    labels = data.test_labels(QUICK, spec, 0, data.PUBLIC_KEY)
    assert labels.shape == (spec["n_test"],) and set(np.unique(labels)) == set(range(10))
    other = data.test_labels(QUICK, spec, 0, "another key")
    assert not np.array_equal(labels, other)
    pred = labels.copy()
    pred[:50] = (pred[:50] + 1) % 10
    record = {
        "setting": QUICK,
        "seed": 0,
        "spec": spec,
        "instance": "public",
        "accuracy": 1 - 50 / len(labels),
    }
    (tmp_path / "result.json").write_text(json.dumps(record))
    np.save(tmp_path / "predictions.npy", pred)
    got = grader.grade(QUICK, 0, tmp_path, TASK.root)
    assert got == {"accuracy": pytest.approx(1 - 50 / len(labels), abs=1e-12)}
    (tmp_path / "result.json").write_text(json.dumps({**record, "accuracy": 0.99}))
    with pytest.raises(ValueError, match="harness recorded"):
        grader.grade(QUICK, 0, tmp_path, TASK.root)
    (tmp_path / "result.json").write_text(json.dumps({**record, "seed": 1}))
    with pytest.raises(ValueError, match="expected"):
        grader.grade(QUICK, 0, tmp_path, TASK.root)


def _module_settings():
    return _grader()._visible_settings(TASK.root)


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, named",
    [
        ("model.layers[0].weight.fill_(float('nan'))", "not finite"),
        ("model.layers[1] = torch.nn.Linear(64, 65)", "differ from the network"),
        ("model.extra = torch.nn.Linear(4, 4)", "differ from the network"),
    ],
)
def test_an_invalid_initial_state_fails_the_run_with_a_message(body, named):
    error = run_cheat(TASK, QUICK, region_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_the_data_and_the_harness_are_out_of_reach():
    error = run_cheat(TASK, QUICK, region_with("import data\ndata.instance"), lint=False)
    assert "No module named 'data'" in error or "violation" in error, error
    body = (
        "import importlib.util, os\n"
        "root = list(importlib.util.find_spec('sklearn').submodule_search_locations)[0]\n"
        "open(os.path.join(root, 'datasets', 'data', 'digits.csv.gz'), 'rb').read()\n"
    )
    error = run_cheat(TASK, QUICK, region_with(body), lint=False)
    assert "violation" in error or "Permission" in error, error
    body = "open('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz', 'rb').read()"
    error = run_cheat(TASK, QUICK, region_with(body), lint=False)
    assert "violation" in error or "Permission" in error, error


@pytest.mark.slow
def test_patching_training_inside_the_initializer_changes_nothing():
    """The initializer's process is not the trainer: a patched optimizer, loss or argmax there
    leaves the parent's training and the graded accuracy exactly as the honest baseline's."""
    patch = (
        "torch.optim.SGD.step = lambda self, closure=None: None\n"
        "torch.nn.functional.cross_entropy = lambda *a, **k: torch.zeros(())\n"
        "torch.Tensor.argmax = lambda self, dim=None: torch.zeros(len(self), dtype=torch.long)\n"
    )
    _, honest = run_setting(TASK, QUICK, region_with("", "kaiming"), lint=False)
    _, patched = run_setting(TASK, QUICK, region_with(patch, "kaiming"), lint=False)
    assert honest.error is None and patched.error is None, (honest.error, patched.error)
    assert patched.metrics == honest.metrics
    assert honest.metrics["accuracy"] > 0.5


@pytest.mark.slow
def test_the_default_scores_about_chance_and_the_reference_as_anchored():
    from cheats import assert_anchored

    result, run = run_setting(TASK, QUICK, region_with(""), lint=False)
    assert run.error is None, run.error
    assert run.metrics["accuracy"] < 0.3
    # on the hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
