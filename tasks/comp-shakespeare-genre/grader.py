"""Trusted grader of comp-shakespeare-genre: macro-F1 of predicted genres on held-out plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import read_submission, split_labels

ID, TARGET = "id", "genre"
CLASSES = ("comedy", "history", "tragedy")
SPLITS = ("early-plays", "late-plays")


def _read(submission: Path, task_dir: Path):
    return read_submission(
        submission, task_dir, ID, TARGET, dtype={TARGET: str}, keep_default_na=False
    )


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    labels = df[TARGET].astype(str)
    bad = ~labels.isin(CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"column {TARGET}: {int(bad.sum())} values are not a genre (e.g. {labels.iloc[i]!r} "
            f"for id {df[ID].iloc[i]}); expected one of {list(CLASSES)} (lower case)"
        )
    counts = labels.value_counts().reindex(CLASSES, fill_value=0)
    return f"OK: {len(df)} rows, ids match test.csv, genres " + ", ".join(
        f"{c}={n}" for c, n in counts.items()
    )


def macro_f1(y_true, y_pred, classes=CLASSES) -> float:
    """Unweighted mean over `classes` of the per-class F1 (0 for a class never predicted)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in classes:
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Macro-F1 of out_dir/submission.csv on the test passages of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = _read(submission, task_dir)
    sub[ID] = pd.to_numeric(sub[ID]).astype(np.int64)
    merged = labels[[ID, TARGET]].merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"macro_f1": macro_f1(merged[f"{TARGET}_true"], merged[TARGET])}
