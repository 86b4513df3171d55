"""ml-clustering-algorithm: the metric, the grader's checks, the task's own cheats through the
real final evaluation with the static policy off (the kit's least-privileged child and the
parent's checks are what stop them), and an honest-code control.

The clustering code only ever receives the points and the number of classes; the classes, the
generators and the instance key live in the parent (datasets.py, hidden_sets.py), and the grader
rebuilds the classes to recompute the metrics from the labels."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("ml-clustering-algorithm")
QUICK = "moons"
HIDDEN = "aniso-blobs"


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grader():
    return _module(TASK.root / "grader.py", "_clu_grader")


def cluster_with(body: str) -> str:
    """The default region whose cluster() first runs ``body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    head = "def cluster(X, n_clusters, rng):\n"
    assert head in text
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return text.replace(head, head + inner, 1)


def test_the_metrics_match_their_definitions():
    agreement = _module(TASK.repo / "agreement.py", "_clu_agreement")
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 500)
    for _ in range(5):
        pred = np.where(rng.random(500) < 0.6, y, rng.integers(-1, 8, 500))
        assert agreement.ari(y, pred) == pytest.approx(adjusted_rand_score(y, pred), abs=1e-12)
        assert agreement.nmi(y, pred) == pytest.approx(
            normalized_mutual_info_score(y, pred), abs=1e-12
        )
    assert agreement.ari(y, (y + 3) % 6) == 1.0  # a renaming of the classes is perfect
    assert abs(agreement.ari(y, rng.permutation(y))) < 0.02
    # all noise is one cluster: labelling everything -1 is the trivial partition
    assert agreement.ari(y, np.full(500, -1)) == 0.0


def test_instances_follow_the_seed_and_the_key():
    datasets = _module(TASK.repo / "datasets.py", "_clu_datasets")
    for name, spec in datasets.SETTINGS.items():
        X, y = datasets.make(name, spec, 0, "public")
        X2, y2 = datasets.make(name, spec, 0, "public")
        assert np.array_equal(X, X2) and np.array_equal(y, y2)
        assert X.shape[0] == y.shape[0] == spec["n"] and np.isfinite(X).all()
        Xk, _ = datasets.make(name, spec, 0, "another key")
        assert not np.array_equal(X, Xk)
        assert len(np.unique(y)) == spec.get("k", 2 if spec["kind"] == "moons" else 10)


def test_the_grader_recomputes_the_metrics_and_rejects_forged_records(tmp_path):
    datasets = _module(TASK.repo / "datasets.py", "_clu_datasets")
    agreement = _module(TASK.repo / "agreement.py", "_clu_agreement")
    spec = datasets.SETTINGS[QUICK]
    _, y = datasets.make(QUICK, spec, 0, "public")
    labels = np.where(np.arange(len(y)) % 3 == 0, 1 - y, y).astype(np.int32)
    record = {
        "setting": QUICK,
        "spec": spec,
        "seed": 0,
        "instance": "public",
        "ari": agreement.ari(y, labels),
        "nmi": agreement.nmi(y, labels),
    }
    np.save(tmp_path / "labels.npy", labels)
    (tmp_path / "result.json").write_text(json.dumps(record))
    grade = _grader().grade
    assert grade(QUICK, 0, tmp_path, TASK.root) == {"ari": record["ari"], "nmi": record["nmi"]}
    (tmp_path / "result.json").write_text(json.dumps({**record, "ari": 0.99}))
    with pytest.raises(ValueError, match="ari recomputed"):
        grade(QUICK, 0, tmp_path, TASK.root)
    (tmp_path / "result.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="seed 1"):
        grade(QUICK, 1, tmp_path, TASK.root)
    np.save(tmp_path / "labels.npy", labels[:-1])
    with pytest.raises(ValueError, match="labels.npy must hold"):
        grade(QUICK, 0, tmp_path, TASK.root)


@pytest.mark.slow
def test_the_generators_and_the_data_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, cluster_with("import hidden_sets"), lint=False)
    assert "No module named 'hidden_sets'" in error or "policy violation" in error, error
    read = "import os\nopen(os.path.join(os.path.dirname(__file__), 'datasets.py')).read()"
    error = run_cheat(TASK, HIDDEN, cluster_with(read), lint=False)
    assert "policy violation" in error and "datasets.py" in error, error
    # the public data behind the settings: scikit-learn's digits and Fashion-MNIST
    digits = "from sklearn.datasets import load_digits\nload_digits()"
    error = run_cheat(TASK, HIDDEN, cluster_with(digits), lint=False)
    # the kit denies scikit-learn's package folder as a whole: the import fails first
    denied = ("policy violation", "Permission", "No module named 'sklearn")
    assert any(d in error for d in denied), error
    fashion = "open('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz', 'rb').read()"
    error = run_cheat(TASK, HIDDEN, cluster_with(fashion), lint=False)
    assert "policy violation" in error or "Permission" in error, error
    assert "fashion-mnist" in error, error


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, named",
    [
        ("return np.zeros(len(X))", "integer array"),
        ("return np.zeros(len(X) + 1, dtype=int)", "shape (1500,)"),
        ("return np.full(len(X), -2)", "outside [-1, 1500)"),
        ("X[0, 0] = 1.0", "read-only"),
    ],
)
def test_an_invalid_answer_fails_the_run_with_a_message(body, named):
    error = run_cheat(TASK, QUICK, cluster_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_frames_written_on_the_pipe_gain_nothing():
    """Code that finds the pipe and sends its own labels frame (the true answer cannot be in it)
    before returning fails the run: the parent reads exactly one frame of n int32 labels."""
    body = (
        "import gc\n"
        "conn = next(o for o in gc.get_objects() if type(o).__name__ == 'Connection')\n"
        "conn.send_bytes(b'L' + bytes(3))\n"
    )
    error = run_cheat(TASK, QUICK, cluster_with(body), lint=False)
    assert "protocol error" in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on a hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
