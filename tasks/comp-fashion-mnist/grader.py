"""Trusted grader of comp-fashion-mnist: accuracy of predicted classes per test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import read_submission, split_labels

ID, TARGET = "id", "label"
N_CLASSES = 10
SPLITS = ("clean", "shifted")


def _read(submission: Path, task_dir: Path):
    return read_submission(submission, task_dir, ID, TARGET)


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    lab = pd.to_numeric(df[TARGET], errors="coerce")
    bad = lab.isna() | (lab != lab.round()) | (lab < 0) | (lab >= N_CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"column {TARGET}: {int(bad.sum())} values are not a class index (e.g. "
            f"{df[TARGET].iloc[i]!r} for id {df[ID].iloc[i]}); "
            f"expected an integer 0-{N_CLASSES - 1}"
        )
    counts = np.bincount(lab.astype(int), minlength=N_CLASSES)
    return f"OK: {len(df)} rows, ids match test.csv, predicted class counts {counts.tolist()}"


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Accuracy of out_dir/submission.csv on the test images of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = _read(submission, task_dir)
    sub = pd.DataFrame(
        {
            ID: pd.to_numeric(sub[ID]).astype(np.int64),
            TARGET: pd.to_numeric(sub[TARGET]).astype(np.int64),
        }
    )
    merged = labels[[ID, TARGET]].merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"accuracy": accuracy(merged[f"{TARGET}_true"], merged[TARGET])}
