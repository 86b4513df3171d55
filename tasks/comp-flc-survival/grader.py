"""Trusted grader of comp-flc-survival: Harrell's concordance index of submitted risk scores
on right-censored survival times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import numeric_target, read_submission, split_labels

ID, TARGET = "id", "risk"
SPLITS = ("age-under-70", "age-70-plus")
BLOCK = 512  # rows of the pair matrix at a time (bounded memory on any split size)


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    df = read_submission(submission, task_dir, ID, TARGET)
    risk = numeric_target(df, ID, TARGET, "a finite risk score (higher = earlier death)")
    return pd.DataFrame({ID: pd.to_numeric(df[ID]).astype(np.int64), TARGET: risk.astype(float)})


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    r = df[TARGET]
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{r.min():.4g}, {r.max():.4g}]"


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C: over comparable pairs (i died at t_i, j was still at risk: t_j > t_i, or
    t_j == t_i with j censored), the share where i has the higher risk, ties counting 1/2.
    Pairs of two deaths on the same day are not comparable (as in lifelines and scikit-survival).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    risk = np.asarray(risk, dtype=float)
    num, den = 0.0, 0.0
    dead = np.flatnonzero(event)
    for start in range(0, len(dead), BLOCK):
        i = dead[start : start + BLOCK]
        ti, ri = time[i, None], risk[i, None]
        comparable = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        num += float(np.sum(comparable & (ri > risk[None, :])))
        num += 0.5 * float(np.sum(comparable & (ri == risk[None, :])))
        den += float(np.sum(comparable))
    if den == 0:
        raise ValueError("no comparable pairs: the concordance index is undefined")
    return num / den


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Concordance of out_dir/submission.csv with the test outcomes of split `setting`."""
    del seed
    labels = split_labels(task_dir, setting, SPLITS)
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    merged = labels.merge(sub, on=ID, how="left")
    c = concordance_index(merged["futime"], merged["death"], merged[TARGET])
    return {"c_index": c}
