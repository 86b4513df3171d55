"""Trusted grader of comp-chemistry-grades: quadratic weighted kappa of submitted A-level
grades (points 0, 2, 4, 6, 8, 10) against the observed grades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import read_submission, split_labels

ID, TARGET = "id", "score"
GRADES = (0, 2, 4, 6, 8, 10)
SPLITS = ("unseen-schools", "unseen-authorities")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    s = pd.to_numeric(df[TARGET], errors="coerce")
    bad = s.isna() | ~s.isin(GRADES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"column {TARGET}: {int(bad.sum())} values are not a grade (e.g. "
            f"{df[TARGET].iloc[i]!r} for id {df[ID].iloc[i]}); expected one of {list(GRADES)}"
        )
    return pd.DataFrame({ID: pd.to_numeric(df[ID]).astype(np.int64), TARGET: s.astype(int)})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    counts = df[TARGET].value_counts().reindex(GRADES, fill_value=0).tolist()
    return f"OK: {len(df)} rows, ids match test.csv, predicted grade counts {counts}"


def quadratic_weighted_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Cohen's kappa with quadratic weights over the ordered grades, as Kaggle computes it
    (equal to sklearn.metrics.cohen_kappa_score(..., weights="quadratic")): 1 - sum(W O) /
    sum(W E), O the confusion matrix, E the outer product of its margins over N. A constant
    prediction scores 0."""
    k = len(GRADES)
    index = {g: i for i, g in enumerate(GRADES)}
    a = np.array([index[int(v)] for v in y_true])
    b = np.array([index[int(v)] for v in y_pred])
    observed = np.zeros((k, k))
    np.add.at(observed, (a, b), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(a)
    i, j = np.indices((k, k))
    weights = (i - j) ** 2 / (k - 1) ** 2
    denom = float((weights * expected).sum())
    if denom == 0:
        return 0.0
    return 1.0 - float((weights * observed).sum()) / denom


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Quadratic weighted kappa of out_dir/submission.csv on the test rows of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"qwk": quadratic_weighted_kappa(merged[f"{TARGET}_true"], merged[TARGET])}
