"""ml-dimensionality-reduction: the metrics, the grader's recomputation, the task's own cheats
through the real final evaluation with the static policy off (the kit's least-privileged child
and the parent's checks are what stop them), and an honest-code control.

The embedding only ever receives the points; the labels, the data files and the hidden setting's
generator stay with the parent, and the grader rebuilds the instance from the seed and the key
to recompute every metric from the embedding."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("ml-dimensionality-reduction")
QUICK = "s-curve"
HIDDEN = "bag-of-words"


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


METRICS = _module(TASK.repo / "metrics.py", "_dimred_metrics")
DATASETS = _module(TASK.repo / "datasets.py", "_dimred_datasets")


def embedding_with(body: str) -> str:
    """The default embedding whose embed() first runs ``body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    head = "    rng = np.random.default_rng(seed)\n"
    assert head in text
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return text.replace(head, inner + head, 1)


def test_the_metrics_on_known_embeddings():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    centers = 10.0 * rng.standard_normal((5, 2))
    separated = centers[labels] + 0.1 * rng.standard_normal((300, 2))
    X = np.hstack([separated, 0.01 * rng.standard_normal((300, 8))])
    m = METRICS.evaluate(X, separated, labels, None)
    assert m["knn_score"] == 1.0
    noise = rng.standard_normal((300, 2))
    m = METRICS.evaluate(X, noise, labels, None)
    assert m["knn_score"] < 0.4
    assert m["trustworthiness"] == pytest.approx(trustworthiness(X, noise, n_neighbors=7))
    assert m["continuity"] == pytest.approx(trustworthiness(noise, X, n_neighbors=7))
    curve = DATASETS.s_curve(500, 0.0, rng)
    assert METRICS.evaluate(curve.X, curve.targets, None, curve.targets)["knn_score"] > 0.99
    # PCA of the S-curve drops its height: the R^2 of that coordinate is about 0
    flat = curve.X[:, [0, 2]]
    assert METRICS.evaluate(curve.X, flat, None, curve.targets)["knn_score"] < 0.6
    with pytest.raises(ValueError, match="non-finite"):
        METRICS.check_embedding(np.full((3, 2), np.nan), 3, 2)
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        METRICS.check_embedding(np.zeros((3, 3)), 3, 2)


def test_instances_depend_on_the_key_and_the_grader_recomputes(tmp_path):
    spec = DATASETS.SETTINGS[QUICK]
    public = DATASETS.load(QUICK, spec, 0, DATASETS.PUBLIC_KEY)
    other = DATASETS.load(QUICK, spec, 0, "another key")
    assert not np.allclose(public.X, other.X)
    grader = _module(TASK.root / "grader.py", "_dimred_grader")
    Y = public.targets.copy()  # the true manifold coordinates: the best embedding there is
    true = METRICS.evaluate(public.X, Y, None, public.targets)
    record = {"setting": QUICK, "spec": spec, "seed": 0, "instance": "public", **true}
    np.save(tmp_path / "embedding.npy", Y)
    (tmp_path / "result.json").write_text(json.dumps(record))
    assert grader.grade(QUICK, 0, tmp_path, TASK.root) == pytest.approx(true)
    np.save(tmp_path / "embedding.npy", np.zeros_like(Y))  # a forged score for a poor embedding
    with pytest.raises(ValueError, match="harness recorded"):
        grader.grade(QUICK, 0, tmp_path, TASK.root)
    (tmp_path / "result.json").write_text(json.dumps({**record, "seed": 1}))
    with pytest.raises(ValueError, match="expected 's-curve' seed 0"):
        grader.grade(QUICK, 0, tmp_path, TASK.root)


@pytest.mark.slow
def test_the_data_the_labels_and_the_hidden_generator_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, embedding_with("import datasets"), lint=False)
    assert "No module named 'datasets'" in error or "policy violation" in error, error
    for target in (
        "os.path.join(os.path.dirname(__file__), 'bagofwords.py')",
        "'/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'",
    ):
        body = f"import os\nopen({target}, 'rb').read()"
        error = run_cheat(TASK, HIDDEN, embedding_with(body), lint=False)
        assert "policy violation" in error, error


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, named",
    [
        ("return X[:, :3]", "shape (1000, 2)"),
        ("return np.full((len(X), 2), np.nan)", "non-finite"),
        ("return np.array([['a', 'b']] * len(X))", "numeric array"),
        ("raise RuntimeError('no embedding today')", "no embedding today"),
    ],
)
def test_an_invalid_embedding_fails_the_run_with_a_message(body, named):
    error = run_cheat(TASK, QUICK, embedding_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on the hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
