"""Trusted grader of comp-physician-visits: mean Poisson deviance of submitted expected numbers
of physician office visits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission, split_labels

ID, TARGET = "id", "visits"
SPLITS = ("seen-regions", "unseen-region")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    mu = numeric_target(df, ID, TARGET, "a positive expected count")
    if (mu <= 0).any():
        bad = df.loc[mu <= 0, ID].iloc[0]
        raise ValueError(
            f"column {TARGET}: {int((mu <= 0).sum())} values are <= 0 (e.g. id {bad}); the "
            "Poisson deviance needs a positive expected count for every row"
        )
    return pd.DataFrame({ID: pd.to_numeric(df[ID]).astype(np.int64), TARGET: mu.astype(float)})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    mu = df[TARGET]
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{mu.min():.4g}, {mu.max():.4g}]"


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Mean Poisson deviance 2 * mean(y log(y / mu) - (y - mu)), with 0 log 0 = 0
    (equal to sklearn.metrics.mean_poisson_deviance)."""
    y, mu = np.asarray(y, dtype=float), np.asarray(mu, dtype=float)
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(2.0 * np.mean(ylogy - (y - mu)))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Mean Poisson deviance of out_dir/submission.csv on the test rows of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    dev = poisson_deviance(merged[f"{TARGET}_true"].to_numpy(), merged[TARGET].to_numpy())
    return {"poisson_deviance": dev}
