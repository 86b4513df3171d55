"""Trusted grader of comp-diamond-prices: root mean squared logarithmic error (RMSLE) of prices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ID, TARGET = "id", "price"
SPLITS = ("under-1-carat", "1-carat-and-over")


def _test_ids(task_dir: Path) -> np.ndarray:
    return pd.read_csv(Path(task_dir) / "repo" / "test.csv", usecols=[ID])[ID].to_numpy()


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    submission = Path(submission)
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {ID},{TARGET}")
    try:
        df = pd.read_csv(submission)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {ID},{TARGET}"
        ) from None
    if list(df.columns) != [ID, TARGET]:
        raise ValueError(
            f"columns are {list(df.columns)}; expected exactly ['{ID}', '{TARGET}'] (header row)"
        )
    expected = _test_ids(task_dir)
    ids = pd.to_numeric(df[ID], errors="coerce")
    if ids.isna().any() or not np.all(ids == ids.round()):
        raise ValueError(f"column {ID}: every value must be an integer id from test.csv")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ValueError(
            f"column {ID}: duplicated ids, e.g. {int(dup.iloc[0])}; one row per test id expected"
        )
    missing = np.setdiff1d(expected, ids.to_numpy())
    extra = np.setdiff1d(ids.to_numpy(), expected)
    if len(missing) or len(extra):
        raise ValueError(
            f"column {ID}: {len(missing)} test ids missing (e.g. {missing[:3].tolist()}) and "
            f"{len(extra)} ids not in test.csv (e.g. {extra[:3].tolist()}); expected exactly "
            f"the {len(expected)} ids of test.csv"
        )
    p = pd.to_numeric(df[TARGET], errors="coerce")
    if p.isna().any():
        bad = df.loc[p.isna(), ID].iloc[0]
        raise ValueError(
            f"column {TARGET}: missing or non-numeric value (e.g. id {bad}); expected a price >= 0"
        )
    if not np.all(np.isfinite(p)) or (p < 0).any():
        raise ValueError(
            f"column {TARGET}: values must be finite prices >= 0 (got min {p.min()}, max {p.max()})"
        )
    return f"OK: {len(df)} rows, ids match test.csv, {TARGET} in [{p.min():.4g}, {p.max():.4g}]"


def rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sqrt(mean((log(1 + pred) - log(1 + true))^2))."""
    d = np.log1p(np.asarray(y_pred, dtype=float)) - np.log1p(np.asarray(y_true, dtype=float))
    return float(np.sqrt(np.mean(d * d)))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """RMSLE of out_dir/submission.csv on the test rows of split `setting`."""
    del seed
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = pd.read_csv(submission)
    labels = pd.read_csv(Path(task_dir) / "private" / "test_labels.csv")
    labels = labels[labels["split"] == setting]
    merged = labels.merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"rmsle": rmsle(merged[f"{TARGET}_true"].to_numpy(), merged[TARGET].to_numpy())}
