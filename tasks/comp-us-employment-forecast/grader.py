"""Trusted grader of comp-us-employment-forecast: mean MASE over the series of a split.

MASE (Hyndman & Koehler 2006) of one series = mean absolute error of its H forecasts divided
by the in-sample mean absolute error of the seasonal naive forecast (lag 12) over the series'
training history (repo/train.csv). A split's score is the mean MASE over its series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission

ID, TARGET = "id", "employed"
SPLITS = ("goods-producing", "service-providing")
SEASON = 12


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no actuals are read); return a one-line summary."""
    df = read_submission(submission, task_dir, ID, TARGET)
    p = numeric_target(df, ID, TARGET, "a number (thousands)")
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
