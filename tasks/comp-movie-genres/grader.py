"""Trusted grader of comp-movie-genres: mean column-wise ROC AUC over six genres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import (
    probability,
    read_submission,
    roc_auc,
    split_labels,
)

ID = "id"
GENRES = ("Action", "Animation", "Comedy", "Drama", "Documentary", "Romance")
SPLITS = ("nineties", "two-thousands")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    """The submission, with its header, ids and probabilities checked."""
    df = read_submission(submission, task_dir, ID, GENRES)
    return df.assign(**{g: probability(df, ID, g) for g in GENRES})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    means = ", ".join(f"{g} {df[g].mean():.3f}" for g in GENRES)
    return f"OK: {len(df)} rows, ids match test.csv, mean probabilities: {means}"


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Mean over the six genres of the ROC AUC of out_dir/submission.csv on split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    aucs = [roc_auc(merged[f"{g}_true"].to_numpy(), merged[g].to_numpy()) for g in GENRES]
    return {"mean_auc": float(np.mean(aucs))}
