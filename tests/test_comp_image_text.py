"""comp-fashion-mnist and comp-shakespeare-genre: the graders' format checks and metrics."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

TASKS = Path(__file__).resolve().parents[1] / "tasks"
FASHION, SHAKES = TASKS / "comp-fashion-mnist", TASKS / "comp-shakespeare-genre"


def _grader(task_dir):
    spec = importlib.util.spec_from_file_location(f"grader_{task_dir.name}", task_dir / "grader.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fm():
    return _grader(FASHION)


@pytest.fixture(scope="module")
def sg():
    return _grader(SHAKES)


def _write(df, tmp_path):
    path = tmp_path / "submission.csv"
    df.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------- data files
def test_fashion_files_consistent():
    train, test = np.load(FASHION / "repo" / "train.npz"), np.load(FASHION / "repo" / "test.npz")
    assert train["images"].shape == (5000, 28, 28) and train["images"].dtype == np.uint8
    assert test["images"].shape == (3000, 28, 28) and test["images"].dtype == np.uint8
    assert np.array_equal(pd.read_csv(FASHION / "repo" / "test.csv")["id"], test["ids"])
    csv = pd.read_csv(FASHION / "repo" / "train.csv")
    assert np.array_equal(csv["id"], train["ids"]) and np.array_equal(csv["label"], train["labels"])
    labels = pd.read_csv(FASHION / "private" / "test_labels.csv")
    assert set(labels["id"]) == set(test["ids"]) and not set(labels["id"]) & set(train["ids"])
    assert labels["split"].value_counts().to_dict() == {"clean": 1500, "shifted": 1500}


def test_shakespeare_files_consistent():
    train = pd.read_csv(SHAKES / "repo" / "train.csv")
    test = pd.read_csv(SHAKES / "repo" / "test.csv")
    labels = pd.read_csv(SHAKES / "private" / "test_labels.csv")
    assert list(train.columns) == ["id", "play", "text", "genre"] and list(test.columns) == [
        "id",
        "text",
    ]
    assert len(train) == 1600 and len(test) == 720 and set(labels["id"]) == set(test["id"])
    assert not set(train["id"]) & set(test["id"])
    assert all(t.count("\n") == 24 for t in test["text"])
    # split by play: no test play is a training play, and both splits hold every genre
    assert labels.groupby("split")["play"].nunique().to_dict() == {
        "early-plays": 6,
        "late-plays": 6,
    }
    assert (labels.groupby(["split", "genre"]).size() == 120).all()


# ------------------------------------------------------------------ the sample submissions
@pytest.mark.parametrize("task_dir", [FASHION, SHAKES], ids=["fashion", "shakespeare"])
def test_sample_submission_validates_and_is_trivial(task_dir, tmp_path):
    g = _grader(task_dir)
    sample = task_dir / "repo" / "sample_submission.csv"
    assert g.validate(sample, task_dir).startswith("OK")
    (tmp_path / "submission.csv").write_bytes(sample.read_bytes())
    for split in g.SPLITS:
        (value,) = g.grade(split, 0, tmp_path, task_dir).values()
        assert value < 0.2  # one class for every row


# ---------------------------------------------------------------------- malformed submissions
def _fashion_ok():
    return pd.read_csv(FASHION / "repo" / "sample_submission.csv")


def _shakes_ok():
    return pd.read_csv(SHAKES / "repo" / "sample_submission.csv")


FASHION_BAD = [
    ("missing column", lambda d: d[["id"]], "expected exactly"),
    ("renamed column", lambda d: d.rename(columns={"label": "class"}), "expected exactly"),
    ("missing row", lambda d: d.iloc[1:], "test ids missing"),
    ("duplicate id", lambda d: pd.concat([d, d.iloc[:1]]), "duplicated ids"),
    ("foreign id", lambda d: d.assign(id=d["id"].where(d.index > 0, 1)), "not in test.csv"),
    (
        "NaN label",
        lambda d: d.assign(label=d["label"].astype(float).where(d.index > 0)),
        "class index",
    ),
    ("label 10", lambda d: d.assign(label=10), "class index"),
    ("float label", lambda d: d.assign(label=2.5), "class index"),
    ("class name", lambda d: d.assign(label="Sneaker"), "class index"),
]
SHAKES_BAD = [
    ("missing column", lambda d: d[["id"]], "expected exactly"),
    ("extra column", lambda d: d.assign(p=0.5), "expected exactly"),
    ("missing row", lambda d: d.iloc[1:], "test ids missing"),
    ("duplicate id", lambda d: pd.concat([d, d.iloc[:1]]), "duplicated ids"),
    ("non-integer id", lambda d: d.assign(id="x"), "integer id"),
    ("empty genre", lambda d: d.assign(genre=d["genre"].where(d.index > 0, "")), "not a genre"),
    ("capitalized", lambda d: d.assign(genre="Comedy"), "not a genre"),
    ("romance", lambda d: d.assign(genre="romance"), "not a genre"),
]


@pytest.mark.parametrize("name,mutate,words", FASHION_BAD, ids=[b[0] for b in FASHION_BAD])
def test_fashion_malformed_submission_is_refused(fm, tmp_path, name, mutate, words):
    path = _write(mutate(_fashion_ok()), tmp_path)
    with pytest.raises(ValueError, match=words):
        fm.validate(path, FASHION)
    with pytest.raises(ValueError, match=words):
        fm.grade("clean", 0, tmp_path, FASHION)


@pytest.mark.parametrize("name,mutate,words", SHAKES_BAD, ids=[b[0] for b in SHAKES_BAD])
def test_shakespeare_malformed_submission_is_refused(sg, tmp_path, name, mutate, words):
    path = _write(mutate(_shakes_ok()), tmp_path)
    with pytest.raises(ValueError, match=words):
        sg.validate(path, SHAKES)
    with pytest.raises(ValueError, match=words):
        sg.grade("late-plays", 0, tmp_path, SHAKES)


def test_missing_submission_file(fm, sg, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        fm.grade("clean", 0, tmp_path, FASHION)
    with pytest.raises(ValueError, match="not found"):
        sg.grade("early-plays", 0, tmp_path, SHAKES)
    with pytest.raises(ValueError, match="unknown split"):
        fm.grade("hidden", 0, tmp_path, FASHION)


# --------------------------------------------------------- metrics against scikit-learn
def test_fashion_accuracy_matches_sklearn(fm, tmp_path):
    labels = pd.read_csv(FASHION / "private" / "test_labels.csv")
    rng = np.random.default_rng(0)
    pred = labels["label"].where(rng.random(len(labels)) < 0.7, rng.integers(0, 10, len(labels)))
    sub = pd.DataFrame({"id": labels["id"], "label": pred}).sample(frac=1, random_state=1)
    _write(sub, tmp_path)
    assert fm.validate(tmp_path / "submission.csv", FASHION).startswith("OK")
    for split in fm.SPLITS:
        rows = labels["split"] == split
        expected = accuracy_score(labels.loc[rows, "label"], pred[rows])
        assert fm.grade(split, 0, tmp_path, FASHION) == {"accuracy": pytest.approx(expected)}
    perfect = labels[["id", "label"]]
    _write(perfect, tmp_path)
    assert fm.grade("shifted", 0, tmp_path, FASHION)["accuracy"] == 1.0


def test_shakespeare_macro_f1_matches_sklearn(sg, tmp_path):
    labels = pd.read_csv(SHAKES / "private" / "test_labels.csv")
    rng = np.random.default_rng(0)
    genres = np.array(["comedy", "history", "tragedy"])
    pred = labels["genre"].where(
        rng.random(len(labels)) < 0.6, genres[rng.integers(0, 3, len(labels))]
    )
    # one class never predicted in late-plays
    pred[labels["split"] == "late-plays"] = pred.where(pred != "history", "comedy")
    sub = pd.DataFrame({"id": labels["id"], "genre": pred}).sample(frac=1, random_state=1)
    _write(sub, tmp_path)
    for split in sg.SPLITS:
        rows = labels["split"] == split
        expected = f1_score(labels.loc[rows, "genre"], pred[rows], average="macro", zero_division=0)
        assert sg.grade(split, 0, tmp_path, SHAKES) == {"macro_f1": pytest.approx(expected)}
