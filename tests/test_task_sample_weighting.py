"""cv-sample-weighting: the metric, the grader's recomputation, the task's own cheats through the
real final evaluation with the static policy off (the kit's least-privileged child and the
parent's checks are what stop them), and an honest-code control.

The loss runs in the training child, which gets the long-tailed training arrays only; the parent
owns the parameters and AdamW, checks the initial state and every returned state, and predicts
the test images itself; the grader redraws the test set and recomputes the balanced accuracy."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("cv-sample-weighting")
QUICK = "digits-ir100"
HIDDEN = "fmnist-cnn-ir10"
HEAD = "def loss(logits, targets, counts, progress):\n"


def _module(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loss_with(body: str) -> str:
    """The default region whose loss() first runs ``body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    assert HEAD in text
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return text.replace(HEAD, HEAD + inner, 1)


def test_balanced_accuracy_profile_and_instances():
    ltdata = _module("_sw_ltdata", TASK.repo / "ltdata.py")
    y = np.repeat(np.arange(10), 5)
    pred = y.copy()
    pred[:5] = 1  # class 0 all wrong
    bacc, recall = ltdata.balanced_accuracy(y, pred)
    assert bacc == pytest.approx(0.9) and recall[0] == 0.0 and recall[1] == 1.0
    sizes = ltdata.class_sizes(ltdata.SETTINGS["fmnist-ir100"])
    assert sizes[0] == 1500 and sizes[-1] == 15 and np.all(np.diff(sizes) < 0)
    assert ltdata.class_sizes({"n_max": 120, "imbalance": 100})[-1] == 1
    spec = ltdata.SETTINGS[QUICK]
    y_pool, _ = ltdata.labels("digits")
    tr, te = ltdata.split(QUICK, spec, 0, ltdata.PUBLIC_KEY, y_pool, y_pool)
    assert not set(tr) & set(te)
    assert sorted(np.bincount(y_pool[tr], minlength=10)) == sorted(ltdata.class_sizes(spec))
    assert np.all(np.bincount(y_pool[te], minlength=10) == spec["n_test"])
    other, _ = ltdata.split(QUICK, spec, 0, "another key", y_pool, y_pool)
    assert not np.array_equal(np.bincount(y_pool[tr]), np.bincount(y_pool[other]))


def test_the_grader_recomputes_and_refuses_a_forged_score(tmp_path):
    grader = _module("_sw_grader", TASK.root / "grader.py")
    ltdata = _module("_sw_ltdata2", TASK.repo / "ltdata.py")
    spec = ltdata.SETTINGS[QUICK]
    y = ltdata.test_labels(QUICK, spec, 3, ltdata.PUBLIC_KEY)
    pred = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % 10).astype(np.int16)
    record = {"setting": QUICK, "spec": spec, "seed": 3, "instance": "public", "error": None}
    np.save(tmp_path / "pred.npy", pred)
    truth = ltdata.balanced_accuracy(y, pred)[0]
    (tmp_path / "result.json").write_text(json.dumps({**record, "balanced_accuracy": truth}))
    assert grader.grade(QUICK, 3, tmp_path, TASK.root) == {"balanced_accuracy": truth}
    (tmp_path / "result.json").write_text(json.dumps({**record, "balanced_accuracy": 1.0}))
    with pytest.raises(ValueError, match="but the harness recorded"):
        grader.grade(QUICK, 3, tmp_path, TASK.root)
    (tmp_path / "result.json").write_text(json.dumps({**record, "balanced_accuracy": truth}))
    np.save(tmp_path / "pred.npy", pred[:-1])
    with pytest.raises(ValueError, match="pred.npy must hold"):
        grader.grade(QUICK, 3, tmp_path, TASK.root)


@pytest.mark.slow
def test_the_data_and_the_test_split_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, loss_with("import ltdata"), lint=False)
    assert "No module named 'ltdata'" in error or "policy violation" in error, error
    read = "open('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz', 'rb').read()"
    error = run_cheat(TASK, QUICK, loss_with(read), lint=False)
    assert "policy violation" in error or "Permission" in error, error


@pytest.mark.slow
def test_moving_a_parameter_outside_the_optimizer_fails_the_run():
    body = (
        "import gc\n"
        "net = next(o for o in gc.get_objects() if isinstance(o, torch.nn.Sequential))\n"
        "with torch.no_grad():\n"
        "    net[-1].bias.add_(0.01)\n"
    )
    error = run_cheat(TASK, QUICK, loss_with(body), lint=False)
    assert "a parameter changed outside the fixed optimizer" in error, error


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, named",
    [
        ("return F.cross_entropy(logits, targets, reduction='none')", "scalar tensor"),
        ("return logits.sum() * float('nan')", "not finite"),
        ("return torch.zeros(())", "without a gradient"),
    ],
)
def test_an_invalid_loss_fails_the_run_with_a_message(body, named):
    error = run_cheat(TASK, QUICK, loss_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_frames_written_on_the_pipe_gain_nothing():
    body = (
        "import gc\n"
        "conn = next(o for o in gc.get_objects() if type(o).__name__ == 'Connection')\n"
        "conn.send_bytes(b'G' + bytes(3))\n"
    )
    error = run_cheat(TASK, QUICK, loss_with(body), lint=False)
    assert "protocol error" in error or "expected" in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on the hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
