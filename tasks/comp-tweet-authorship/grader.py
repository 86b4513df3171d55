"""Trusted grader of comp-tweet-authorship: ROC AUC of P(android) per test period."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlsbench_env.evaluation.submission_csv import (
    probability,
    read_submission,
    roc_auc,
    split_labels,
)

ID, TARGET = "id", "android"
SPLITS = ("campaign", "transition")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    return df.assign(**{TARGET: probability(df, ID, TARGET)})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    p = _read(submission, task_dir)[TARGET]
    return f"OK: {len(p)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """ROC AUC of out_dir/submission.csv on the test tweets of period `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"auc": roc_auc(merged[f"{TARGET}_true"].to_numpy(), merged[TARGET].to_numpy())}
