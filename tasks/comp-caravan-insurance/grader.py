"""Trusted grader of comp-caravan-insurance: ROC AUC of submitted purchase probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission

ID, TARGET = "id", "Purchase"
SPLITS = ("family-segments", "other-segments")


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
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):  # mid-ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """ROC AUC of out_dir/submission.csv on the test rows of split `setting`."""
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
