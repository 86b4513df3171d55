"""Trusted grader of comp-movie-genres: mean column-wise ROC AUC over six genres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import expected_ids

ID = "id"
GENRES = ("Action", "Animation", "Comedy", "Drama", "Documentary", "Romance")
SPLITS = ("nineties", "two-thousands")


def _read(submission: Path, task_dir: Path) -> pd.DataFrame:
    """The submission, with its header, ids and probabilities checked."""
    submission = Path(submission)
    cols = [ID, *GENRES]
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {','.join(cols)}")
    try:
        df = pd.read_csv(submission)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {cols}"
        ) from None
    if list(df.columns) != cols:
        raise ValueError(f"columns are {list(df.columns)}; expected exactly {cols} (header row)")
    ids = pd.to_numeric(df[ID], errors="coerce")
    if ids.isna().any() or not np.all(ids == ids.round()):
        raise ValueError(f"column {ID}: every value must be an integer id from test.csv")
    if ids.duplicated().any():
        dup = int(ids[ids.duplicated()].iloc[0])
        raise ValueError(f"column {ID}: duplicated ids, e.g. {dup}; one row per test id expected")
    expected = expected_ids(task_dir, ID)
    missing, extra = np.setdiff1d(expected, ids), np.setdiff1d(ids, expected)
    if len(missing) or len(extra):
        raise ValueError(
            f"column {ID}: {len(missing)} test ids missing (e.g. {missing[:3].tolist()}) and "
            f"{len(extra)} ids not in test.csv (e.g. {extra[:3].tolist()}); expected exactly "
            f"the {len(expected)} ids of test.csv"
        )
    for g in GENRES:
        p = pd.to_numeric(df[g], errors="coerce")
        if p.isna().any() or not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
            bad = df.loc[p.isna() | ~p.between(0, 1), ID].iloc[0]
            raise ValueError(
                f"column {g}: missing, non-numeric or out-of-range value (e.g. id {bad}); "
                "expected a probability in [0, 1]"
            )
        df[g] = p
    df[ID] = ids.astype(np.int64)
    return df


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission, task_dir)
    means = ", ".join(f"{g} {df[g].mean():.3f}" for g in GENRES)
    return f"OK: {len(df)} rows, ids match test.csv, mean probabilities: {means}"


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic with mid-ranks for ties."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    _, inverse, counts = np.unique(
        np.asarray(score, float), return_inverse=True, return_counts=True
    )
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Mean over the six genres of the ROC AUC of out_dir/submission.csv on split `setting`."""
    del seed
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    sub = _read(Path(out_dir) / "submission.csv", task_dir)
    labels = pd.read_csv(Path(task_dir) / "private" / "test_labels.csv")
    labels = labels[labels["split"] == setting]
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    aucs = [roc_auc(merged[f"{g}_true"].to_numpy(), merged[g].to_numpy()) for g in GENRES]
    return {"mean_auc": float(np.mean(aucs))}
