"""Trusted grader of comp-hotel-rates: mean absolute error of submitted average daily room
prices, per test split of arrival months."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission, split_labels

ID, TARGET = "id", "avg_price_per_room"
SPLITS = ("may-june-2017", "july-august-2017")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    price = numeric_target(df, ID, TARGET, "a price in EUR")
    return pd.DataFrame({ID: pd.to_numeric(df[ID]).astype(np.int64), TARGET: price.astype(float)})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    p = df[TARGET]
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def mean_absolute_error(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(pred, dtype=float))))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """MAE of out_dir/submission.csv on the test stays of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"mae": mean_absolute_error(merged[f"{TARGET}_true"], merged[TARGET])}
