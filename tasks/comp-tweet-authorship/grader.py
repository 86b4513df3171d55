"""Trusted grader of comp-tweet-authorship: ROC AUC of P(android) per test period."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission

ID, TARGET = "id", "android"
SPLITS = ("campaign", "transition")


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = read_submission(submission, task_dir, ID, TARGET)
    p = numeric_target(df, ID, TARGET, "a probability in [0, 1]")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(
            f"column {TARGET}: values must be probabilities in [0, 1] "
            f"(got min {p.min()}, max {p.max()})"
        )
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic with mid-ranks for ties."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    mid = upper - (counts - 1) / 2.0  # the mid-rank of each distinct score
    ranks = mid[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """ROC AUC of out_dir/submission.csv on the test tweets of period `setting`."""
    del seed
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = pd.read_csv(submission)
    labels = pd.read_csv(Path(task_dir) / "private" / "test_labels.csv")
    labels = labels[labels["split"] == setting]
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"auc": roc_auc(merged[f"{TARGET}_true"].to_numpy(), merged[TARGET].to_numpy())}
