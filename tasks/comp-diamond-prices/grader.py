"""Trusted grader of comp-diamond-prices: root mean squared logarithmic error (RMSLE) of prices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission, split_labels

ID, TARGET = "id", "price"
SPLITS = ("under-1-carat", "1-carat-and-over")


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = read_submission(submission, task_dir, ID, TARGET)
    p = numeric_target(df, ID, TARGET, "a price >= 0")
    if (p < 0).any():
        raise ValueError(
            f"column {TARGET}: values must be finite prices >= 0 (got min {p.min()}, max {p.max()})"
        )
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sqrt(mean((log(1 + pred) - log(1 + true))^2))."""
    d = np.log1p(np.asarray(y_pred, dtype=float)) - np.log1p(np.asarray(y_true, dtype=float))
    return float(np.sqrt(np.mean(d * d)))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """RMSLE of out_dir/submission.csv on the test rows of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = pd.read_csv(submission)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"rmsle": rmsle(merged[f"{TARGET}_true"].to_numpy(), merged[TARGET].to_numpy())}
