"""Trusted grader of comp-shakespeare-genre: macro-F1 of predicted genres on held-out plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ID, TARGET = "id", "genre"
CLASSES = ("comedy", "history", "tragedy")
SPLITS = ("early-plays", "late-plays")


def _test_ids(task_dir: Path) -> np.ndarray:
    return pd.read_csv(Path(task_dir) / "repo" / "test.csv", usecols=[ID])[ID].to_numpy()


def _read(submission: Path) -> pd.DataFrame:
    submission = Path(submission)
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {ID},{TARGET}")
    try:
        return pd.read_csv(submission, dtype={TARGET: str}, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {ID},{TARGET}"
        ) from None


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no labels are read); return a one-line summary."""
    df = _read(submission)
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
            f"{len(extra)} ids not in test.csv (e.g. {extra[:3].tolist()}); expected exactly the "
            f"{len(expected)} ids of test.csv"
        )
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
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    submission = Path(out_dir) / "submission.csv"
    validate(submission, task_dir)
    sub = _read(submission)
    sub[ID] = pd.to_numeric(sub[ID]).astype(np.int64)
    labels = pd.read_csv(Path(task_dir) / "private" / "test_labels.csv")
    labels = labels[labels["split"] == setting]
    merged = labels[[ID, TARGET]].merge(sub, on=ID, how="left", suffixes=("_true", ""))
    return {"macro_f1": macro_f1(merged[f"{TARGET}_true"], merged[TARGET])}
