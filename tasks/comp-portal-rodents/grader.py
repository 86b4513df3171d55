"""Trusted grader of comp-portal-rodents: multi-class log loss of submitted species
probabilities (one column per species), per test split of years."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import read_submission, split_labels

ID, TARGET = "id", "species_id"
CLASSES = ("AH", "DM", "DO", "DS", "NL", "OL", "OT", "PB", "PE", "PF", "PM", "PP", "RM", "SS")
SPLITS = ("1997-1999", "2000-2002")
EPS = 1e-15  # Kaggle's clipping of probabilities before the log


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    """The submission with its header and ids checked and its probabilities numeric."""
    df = read_submission(submission, task_dir, ID, CLASSES)
    ids = pd.to_numeric(df[ID])
    probs = df[list(CLASSES)].apply(pd.to_numeric, errors="coerce")
    bad = probs.isna().any(axis=1) | ~np.isfinite(probs.to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows have a missing or non-numeric probability "
            f"(e.g. id {df[ID][bad].iloc[0]}); expected numbers in [0, 1]"
        )
    p = probs.to_numpy(dtype=float)
    if (p < 0).any() or (p > 1).any():
        raise ValueError(f"probabilities must lie in [0, 1] (got min {p.min()}, max {p.max()})")
    if (p.sum(axis=1) <= 0).any():
        raise ValueError("a row's probabilities sum to 0; each row needs a positive total")
    out = pd.DataFrame(p, columns=list(CLASSES))
    out.insert(0, ID, ids.astype(np.int64).to_numpy())
    return out


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    total = df[list(CLASSES)].sum(axis=1)
    return (
        f"OK: {len(df)} rows, ids match test.csv, {len(CLASSES)} species columns, row sums in "
        f"[{total.min():.4g}, {total.max():.4g}] (rows are rescaled to sum to 1)"
    )


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log probability of the true class: rows rescaled to sum to 1, then
    clipped to [EPS, 1 - EPS], as Kaggle's multi-class log loss."""
    p = p / p.sum(axis=1, keepdims=True)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Log loss of out_dir/submission.csv on the test captures of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels[[ID, TARGET]].merge(sub, on=ID, how="left")
    y = merged[TARGET].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    return {"log_loss": log_loss(y, merged[list(CLASSES)].to_numpy(dtype=float))}
