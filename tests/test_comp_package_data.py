"""Graders of the competitions built from data that ships in packages: comp-tweet-authorship,
comp-movie-genres, comp-slanted-digits, comp-leaf-outlines and comp-fashion-denoising. The
sample submission validates and grades every split, a malformed file gets a clear ValueError,
and each metric equals an independent computation on the private labels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

TASKS = Path(__file__).resolve().parents[1] / "tasks"
COMPS = {  # task id -> (submission columns after id, splits)
    "comp-tweet-authorship": (["android"], ("campaign", "transition")),
    "comp-movie-genres": (
        ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance"],
        ("nineties", "two-thousands"),
    ),
    "comp-slanted-digits": (["label"], ("upright", "slanted")),
    "comp-leaf-outlines": (["label"], ("as-traced", "re-traced")),
    "comp-fashion-denoising": (["pixels"], ("moderate-noise", "heavy-noise")),
}


def _grader(task_id: str):
    spec = importlib.util.spec_from_file_location(
        f"grader_{task_id.replace('-', '_')}", TASKS / task_id / "grader.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(task_id: str) -> pd.DataFrame:
    return pd.read_csv(TASKS / task_id / "repo" / "sample_submission.csv", dtype={"pixels": str})


def _write(df: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "submission.csv", index=False)
    return out_dir / "submission.csv"


@pytest.mark.parametrize("task_id", COMPS)
def test_sample_submission_validates_and_grades_every_split(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    cols, splits = COMPS[task_id]
    assert list(_sample(task_id).columns) == ["id", *cols]
    assert grader.validate(task_dir / "repo" / "sample_submission.csv", task_dir).startswith("OK")
    _write(_sample(task_id), tmp_path)
    assert tuple(grader.SPLITS) == splits
    for split in splits:
        (value,) = grader.grade(split, 0, tmp_path, task_dir).values()
        assert np.isfinite(value)
    with pytest.raises(ValueError, match="unknown split"):
        grader.grade("no-such-split", 0, tmp_path, task_dir)


def _malformed(task_id: str):
    cols, _ = COMPS[task_id]
    s = _sample(task_id)
    target = cols[0]
    yield "columns are", s.rename(columns={target: "prediction"})
    yield "columns are", s[["id"]]
    yield "missing", s.iloc[1:]
    yield "duplicated", pd.concat([s, s.iloc[:1]])
    yield "not in test.csv", s.assign(id=s["id"].where(s.index != 0, -5))
    bad = {
        "comp-tweet-authorship": (2.0, "probabilit"),
        "comp-movie-genres": (-0.5, "probability"),
        "comp-slanted-digits": (12, "not a digit"),
        "comp-leaf-outlines": (6, "not a class index"),
        "comp-fashion-denoising": ("0.5 0.5", "784"),
    }[task_id]
    yield bad[1], s.assign(**{target: s[target].astype(object).where(s.index != 3, bad[0])})


@pytest.mark.parametrize("task_id", COMPS)
def test_malformed_submissions_get_a_clear_value_error(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    for k, (message, df) in enumerate(_malformed(task_id)):
        path = _write(df, tmp_path / str(k))
        with pytest.raises(ValueError, match=message):
            grader.validate(path, task_dir)


def _random_submission(task_id: str, rng) -> pd.DataFrame:
    s = _sample(task_id)
    cols, _ = COMPS[task_id]
    if task_id == "comp-fashion-denoising":
        s["pixels"] = [" ".join(f"{v:.3f}" for v in rng.random(784)) for _ in range(len(s))]
    elif task_id in ("comp-slanted-digits", "comp-leaf-outlines"):
        s["label"] = rng.integers(0, 10 if task_id == "comp-slanted-digits" else 6, len(s))
    else:
        for c in cols:  # rounded, so that ties occur and mid-ranks are exercised
            s[c] = np.round(rng.random(len(s)), 2)
    return s


@pytest.mark.parametrize("task_id", COMPS)
def test_metric_matches_an_independent_computation(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    sub = _random_submission(task_id, np.random.default_rng(7))
    _write(sub, tmp_path)
    cols, splits = COMPS[task_id]
    private = task_dir / "private"
    for split in splits:
        (got,) = grader.grade(split, 0, tmp_path, task_dir).values()
        if task_id == "comp-fashion-denoising":
            truth = np.load(private / "test_clean.npz")
            keep = truth["split"] == split
            pred = sub.set_index("id").loc[truth["ids"][keep], "pixels"]
            pred = np.array([np.array(p.split(), float) for p in pred])
            clean = truth["clean"][keep].reshape(int(keep.sum()), -1) / 255.0
            want = float(np.sqrt(np.mean((pred - clean) ** 2)))
        else:
            labels = pd.read_csv(private / "test_labels.csv")
            labels = labels[labels["split"] == split].merge(sub, on="id", suffixes=("", "_p"))
            if task_id in ("comp-slanted-digits", "comp-leaf-outlines"):
                want = accuracy_score(labels["label"], labels["label_p"])
            else:
                want = np.mean([roc_auc_score(labels[c], labels[f"{c}_p"]) for c in cols])
        assert got == pytest.approx(want, abs=1e-12), (task_id, split)
