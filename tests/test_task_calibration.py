"""ml-calibration: the metric, the task's own cheats through the real final evaluation with the
static policy off (the kit's least-privileged child and the parent's checks are what stop them),
and an honest-code control.

The calibrator only ever receives scores and the labels of the calibration split; the data, the
classifier and the test labels stay in the parent (setups.py), which measures ECE itself, and the
grader rebuilds the test labels from the seed and the key to recompute it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.evaluation import final_evaluation
from mlsbench_env.spec import load_task

TASK = load_task("ml-calibration")
QUICK = "rf-digits"
HIDDEN = "svm-breast-cancer"


def _setups():
    spec = importlib.util.spec_from_file_location("_mc_setups", TASK.repo / "setups.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calibrator_with(predict_body: str) -> str:
    """The default calibrator whose predict() first runs ``predict_body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    head = "    def predict(self, scores):\n"
    assert head in text
    inner = "".join("        " + line + "\n" for line in predict_body.strip("\n").splitlines())
    return text.replace(head, head + inner, 1)


def test_ece_and_nll_on_cases_worked_by_hand():
    s = _setups()
    y = np.array([0, 0, 1, 1])
    # confidences 0.9, 0.9 (bin 14: both right, |1 - 0.9|) and 0.6, 0.6 (bin 9: one right)
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    assert s.ece(p, y) == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)
    assert s.nll(p, y) == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.6, 0.4])))
    # labels drawn from the probabilities themselves: calibrated, so ECE is sampling noise
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5) * 0.5, size=20000)
    labels = (q.cumsum(axis=1) < rng.random((20000, 1))).sum(axis=1)
    assert s.ece(q, labels) < 0.015
    assert s.ece(np.eye(5)[(labels + 1) % 5], labels) == pytest.approx(1.0)
    assert s.check_probs(q, 20000, 5) is None
    assert "sum to 1" in s.check_probs(q * 0.99, 20000, 5)
    assert "outside [0, 1]" in s.check_probs(q - 0.5, 20000, 5)


def test_public_and_final_instances_differ_and_the_grader_sees_the_same_splits():
    s = _setups()
    spec = s.SETTINGS["gbm-madelon"]
    _, y_pub = s.load("gbm-madelon", spec, 0, "public", labels_only=True)
    _, y_fin = s.load("gbm-madelon", spec, 0, "another key", labels_only=True)
    assert not np.array_equal(y_pub, y_fin)
    train, splits = s.partition("rf-digits", s.SETTINGS["rf-digits"], 0, "public", 1797)
    for cal, test in splits:
        assert not set(cal) & set(test) and not set(train) & (set(cal) | set(test))
    _, again = s.partition("rf-digits", s.SETTINGS["rf-digits"], 0, "public", 1797)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))


def test_the_data_module_and_the_hidden_spec_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, calibrator_with("import setups"), lint=False)
    assert "No module named 'setups'" in error or "policy violation" in error, error
    read = "import os\nopen(os.path.join(os.path.dirname(__file__), 'svm_cancer.py')).read()"
    error = run_cheat(TASK, HIDDEN, calibrator_with(read), lint=False)
    assert "policy violation" in error and "svm_cancer.py" in error, error


@pytest.mark.parametrize(
    "body, named",
    [
        ("return np.full((len(scores), self.K), 0.3)", "do not sum to 1"),
        ("return np.ones((len(scores), self.K + 1)) / (self.K + 1)", "shape"),
        ("return np.full((len(scores), self.K), np.nan)", "not finite"),
        ("return np.eye(self.K)[np.zeros(len(scores), int)] * 2 - 0.5", "outside [0, 1]"),
    ],
)
def test_invalid_probabilities_fail_the_run_with_a_message(body, named):
    error = run_cheat(TASK, HIDDEN, calibrator_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_frames_written_on_the_pipe_gain_nothing():
    """A calibrator that finds the pipe and sends its own frame fails the run; the parent reads
    exactly one frame of n_test x K float64 per split, measures it itself and never reads a
    number the child wrote as a metric."""
    body = (
        "import gc\n"
        "conn = next(o for o in gc.get_objects() if type(o).__name__ == 'Connection')\n"
        "conn.send_bytes(b'P' + bytes(8))\n"
    )
    error = run_cheat(TASK, QUICK, calibrator_with(body), lint=False)
    assert "protocol error" in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on the hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)


# Keeps the classifier's argmax and gives every point the same confidence, the accuracy measured
# on the calibration split. ECE alone rewards it (binned ECE cannot see resolution: it scored
# about 0.01 where temperature scaling scores about 0.02); NLL, a proper scoring rule, punishes it.
CONSTANT_CONFIDENCE = """
class Calibrator:
    def __init__(self, kind, n_classes):
        self.K = n_classes

    def fit(self, scores, labels):
        self.acc = float((scores.argmax(axis=1) == labels).mean())
        return self

    def predict(self, scores):
        c = min(max(self.acc, 1.0 / self.K + 1e-6), 1 - 1e-6)
        p = np.full((len(scores), self.K), (1 - c) / (self.K - 1))
        p[np.arange(len(scores)), scores.argmax(axis=1)] = c
        return p
"""


@pytest.mark.slow
def test_constant_confidence_stays_below_the_reference():
    """The cheat that games ECE, through the real final evaluation on every setting (seed 0):
    its ECE beats the reference's, its task score must not reach 50."""
    (region,) = TASK.regions
    result = final_evaluation(
        TASK, {(region.file, region.index): CONSTANT_CONFIDENCE}, {}, seeds=[0]
    )
    assert all(run.error is None for run in result.runs), [run.error for run in result.runs]
    anchors = TASK.anchors()["anchors"]
    assert any(run.metrics["ece"] < anchors[run.label]["ece"]["reference"] for run in result.runs)
    assert result.score is not None and result.score < 50.0, (result.score, result.setting_scores)
