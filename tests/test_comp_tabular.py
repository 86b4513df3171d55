"""Competition graders of comp-caravan-insurance, comp-diamond-prices and
comp-us-employment-forecast: format checks give clear errors, the sample submission validates,
and each metric equals an independent computation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_log_error, roc_auc_score

TASKS = Path(__file__).resolve().parents[1] / "tasks"
COMPS = {  # task id -> (target column, splits)
    "comp-caravan-insurance": ("Purchase", ("family-segments", "other-segments")),
    "comp-diamond-prices": ("price", ("under-1-carat", "1-carat-and-over")),
    "comp-us-employment-forecast": ("employed", ("goods-producing", "service-providing")),
}


def _grader(task_id: str):
    spec = importlib.util.spec_from_file_location(
        f"grader_{task_id.replace('-', '_')}", TASKS / task_id / "grader.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(task_id: str) -> pd.DataFrame:
    return pd.read_csv(TASKS / task_id / "repo" / "sample_submission.csv")


def _write(df: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "submission.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("task_id", COMPS)
def test_sample_submission_validates_and_grades_every_split(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    assert grader.validate(task_dir / "repo" / "sample_submission.csv", task_dir).startswith("OK")
    _write(_sample(task_id), tmp_path)
    target, splits = COMPS[task_id]
    assert tuple(grader.SPLITS) == splits
    for split in splits:
        (value,) = grader.grade(split, 0, tmp_path, task_dir).values()
        assert np.isfinite(value)
    with pytest.raises(ValueError, match="unknown split"):
        grader.grade("no-such-split", 0, tmp_path, task_dir)


def _malformed(task_id: str):
    target, _ = COMPS[task_id]
    s = _sample(task_id)
    yield "columns are", s.rename(columns={target: "prediction"})
    yield "columns are", s[["id"]]
    yield "columns are", s.assign(extra=1.0)
    yield "missing", s.iloc[1:]
    yield "duplicated", pd.concat([s, s.iloc[:1]])
    yield "not in test.csv", s.assign(id=s["id"].where(s.index != 0, -5))
    yield "missing or non-numeric", s.assign(**{target: s[target].where(s.index != 3, np.nan)})
    yield (
        "missing or non-numeric",
        s.assign(**{target: s[target].astype(object).where(s.index != 3, "abc")}),
    )
    yield "integer id", s.assign(id=s["id"].astype(object).where(s.index != 2, "x7"))


@pytest.mark.parametrize("task_id", COMPS)
def test_malformed_submissions_get_a_clear_value_error(task_id, tmp_path):
    grader, task_dir = _grader(task_id), TASKS / task_id
    for k, (message, df) in enumerate(_malformed(task_id)):
        path = _write(df, tmp_path / str(k))
        with pytest.raises(ValueError, match=message):
            grader.validate(path, task_dir)
        with pytest.raises(ValueError, match=message):  # grade() validates first
            grader.grade(COMPS[task_id][1][0], 0, path.parent, task_dir)
    with pytest.raises(ValueError, match="not found"):
        grader.validate(tmp_path / "absent.csv", task_dir)


def test_range_checks(tmp_path):
    s = _sample("comp-caravan-insurance")
    for bad in (1.5, -0.1, np.inf):
        path = _write(
            s.assign(Purchase=s["Purchase"].where(s.index != 0, bad)), tmp_path / str(bad)
        )
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            _grader("comp-caravan-insurance").validate(path, TASKS / "comp-caravan-insurance")
    s = _sample("comp-diamond-prices")
    path = _write(s.assign(price=s["price"].where(s.index != 0, -3.0)), tmp_path / "neg")
    with pytest.raises(ValueError, match=">= 0"):
        _grader("comp-diamond-prices").validate(path, TASKS / "comp-diamond-prices")


def test_auc_matches_sklearn_with_ties():
    grader = _grader("comp-caravan-insurance")
    rng = np.random.default_rng(0)
    y = rng.random(700) < 0.07
    score = np.round(rng.random(700) + 0.3 * y, 1)  # many ties
    assert grader.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_caravan_grade_matches_sklearn_per_split(tmp_path):
    grader, task_dir = _grader("comp-caravan-insurance"), TASKS / "comp-caravan-insurance"
    labels = pd.read_csv(task_dir / "private" / "test_labels.csv")
    rng = np.random.default_rng(1)
    sub = labels[["id"]].assign(
        Purchase=np.clip(0.3 * labels["Purchase"] + rng.random(len(labels)) * 0.8, 0, 1)
    )
    _write(sub.sample(frac=1.0, random_state=0), tmp_path)  # row order must not matter
    for split in grader.SPLITS:
        part = labels["split"] == split
        expected = roc_auc_score(labels.loc[part, "Purchase"], sub.loc[part, "Purchase"])
        assert grader.grade(split, 0, tmp_path, task_dir)["auc"] == pytest.approx(
            expected, abs=1e-12
        )
    _write(_sample("comp-caravan-insurance"), tmp_path)
    assert grader.grade("family-segments", 0, tmp_path, task_dir)["auc"] == pytest.approx(0.5)


def test_rmsle_matches_sklearn_per_split(tmp_path):
    grader, task_dir = _grader("comp-diamond-prices"), TASKS / "comp-diamond-prices"
    labels = pd.read_csv(task_dir / "private" / "test_labels.csv")
    rng = np.random.default_rng(2)
    sub = labels[["id"]].assign(price=labels["price"] * np.exp(rng.normal(0, 0.2, len(labels))))
    _write(sub, tmp_path)
    for split in grader.SPLITS:
        part = labels["split"] == split
        expected = np.sqrt(
            mean_squared_log_error(labels.loc[part, "price"], sub.loc[part, "price"])
        )
        assert grader.grade(split, 0, tmp_path, task_dir)["rmsle"] == pytest.approx(
            expected, rel=1e-12
        )
    _write(labels[["id", "price"]], tmp_path)
    assert grader.grade("under-1-carat", 0, tmp_path, task_dir)["rmsle"] == 0.0


def test_mase_matches_an_independent_computation(tmp_path):
    grader, task_dir = _grader("comp-us-employment-forecast"), TASKS / "comp-us-employment-forecast"
    labels = pd.read_csv(task_dir / "private" / "test_labels.csv")
    train = pd.read_csv(task_dir / "repo" / "train.csv")
    sample = _sample("comp-us-employment-forecast")  # the naive forecast: last observed value
    _write(sample, tmp_path)
    # independent: seasonal differences with pandas' groupby/shift, naive forecast from train
    scale = (
        (train["employed"] - train.groupby("series_id")["employed"].shift(12))
        .abs()
        .groupby(train["series_id"])
        .mean()
    )
    last = train.groupby("series_id")["employed"].last()
    err = (
        (labels["employed"] - labels["series_id"].map(last))
        .abs()
        .groupby(labels["series_id"])
        .mean()
    )
    per_series = err / scale[err.index]
    split_of = labels.groupby("series_id")["split"].first()
    for split in grader.SPLITS:
        expected = per_series[split_of[per_series.index] == split].mean()
        assert grader.grade(split, 0, tmp_path, task_dir)["mase"] == pytest.approx(
            expected, rel=1e-10
        )
    _write(labels[["id", "employed"]], tmp_path)
    assert grader.grade("goods-producing", 0, tmp_path, task_dir)["mase"] == 0.0
