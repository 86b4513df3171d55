"""Trusted grader of comp-us-employment-forecast: mean MASE over the series of a split.

MASE (Hyndman & Koehler 2006) of one series = mean absolute error of its H forecasts divided
by the in-sample mean absolute error of the seasonal naive forecast (lag 12) over the series'
training history (repo/train.csv). A split's score is the mean MASE over its series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ID, TARGET = "id", "employed"
SPLITS = ("goods-producing", "service-providing")
SEASON = 12


def _test_ids(task_dir: Path) -> np.ndarray:
    return pd.read_csv(Path(task_dir) / "repo" / "test.csv", usecols=[ID])[ID].to_numpy()


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no actuals are read); return a one-line summary."""
    submission = Path(submission)
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {ID},{TARGET}")
    try:
        df = pd.read_csv(submission)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {ID},{TARGET}"
        ) from None
    if list(df.columns) != [ID, TARGET]:
        raise ValueError(
            f"columns are {list(df.columns)}; expected exactly ['{ID}', '{TARGET}'] (header row)"
        )
    expected = _test_ids(task_dir)
    ids = pd.to_numeric(df[ID], errors="coerce")
    if ids.isna().any() or not np.all(ids == ids.round()):
        raise ValueError(f"column {ID}: every value must be an integer id from test.csv")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ValueError(
            f"column {ID}: duplicated ids, e.g. {int(dup.iloc[0])}; one row per test id expected"
        )
    missing = np.setdiff1d(expected, ids.to_numpy())
    extra = np.setdiff1d(ids.to_numpy(), expected)
    if len(missing) or len(extra):
        raise ValueError(
            f"column {ID}: {len(missing)} test ids missing (e.g. {missing[:3].tolist()}) and "
            f"{len(extra)} ids not in test.csv (e.g. {extra[:3].tolist()}); expected exactly "
            f"the {len(expected)} ids of test.csv"
        )
    p = pd.to_numeric(df[TARGET], errors="coerce")
    if p.isna().any():
        bad = df.loc[p.isna(), ID].iloc[0]
        raise ValueError(
            f"column {TARGET}: missing or non-numeric value (e.g. id {bad}); "
            "expected a number (thousands)"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError(f"column {TARGET}: values must be finite numbers")
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def seasonal_naive_scale(history: np.ndarray, season: int = SEASON) -> float:
    """Mean absolute seasonal difference of a series' history: the MASE denominator."""
    history = np.asarray(history, dtype=float)
    return float(np.mean(np.abs(history[season:] - history[:-season])))


def mase(
    actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int = SEASON
) -> float:
    return float(
        np.mean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float)))
        / seasonal_naive_scale(history, season)
    )


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Mean MASE of out_dir/submission.csv over the series of split `setting`."""
    del seed
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = pd.read_csv(submission)
    task_dir = Path(task_dir)
    labels = pd.read_csv(task_dir / "private" / "test_labels.csv")
    labels = labels[labels["split"] == setting].merge(
        sub, on=ID, how="left", suffixes=("_true", "")
    )
    train = pd.read_csv(task_dir / "repo" / "train.csv")
    history = {sid: g[TARGET].to_numpy() for sid, g in train.groupby("series_id")}
    scores = [
        mase(g[f"{TARGET}_true"], g[TARGET], history[sid]) for sid, g in labels.groupby("series_id")
    ]
    return {"mase": float(np.mean(scores))}
