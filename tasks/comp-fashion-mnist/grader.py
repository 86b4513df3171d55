"""Trusted grader of comp-fashion-mnist: accuracy of predicted classes per test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import class_index, read_submission, split_labels

ID, TARGET = "id", "label"
N_CLASSES = 10
SPLITS = ("clean", "shifted")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    labels = class_index(df, ID, TARGET, N_CLASSES, "a class index")
    return pd.DataFrame({ID: pd.to_numeric(df[ID]).astype(np.int64), TARGET: labels})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    counts = np.bincount(df[TARGET], minlength=N_CLASSES)
    return f"OK: {len(df)} rows, ids match test.csv, predicted class counts {counts.tolist()}"


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Accuracy of out_dir/submission.csv on the test images of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels[[ID, TARGET]].merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"accuracy": float(np.mean(merged[f"{TARGET}_true"] == merged[TARGET]))}
