"""What competition graders share: the format checks of a submission (a CSV with exactly the
columns id and target(s), one row for every id of the task's public test file), the private
labels of one test split, and the ROC AUC.

A grader's `validate` calls `read_submission`, then checks the target column its own way
(`numeric_target` for numbers, `probability`, `class_index`). Every failure is a ValueError
whose message says what was wrong and what is expected: the agent reads it through the
`validate` tool. Needs pandas (the graders' dependency, not the core's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def expected_ids(
    task_dir: Path, id_col: str = "id", test_file: str = "repo/test.csv"
) -> np.ndarray:
    """The ids a submission must cover: the id column of the public test file (for graders
    whose submissions have more columns than `read_submission` takes)."""
    return pd.read_csv(Path(task_dir) / test_file, usecols=[id_col])[id_col].to_numpy()


def read_submission(
    submission: Path,
    task_dir: Path,
    id_col: str,
    target_col: str | Sequence[str],
    test_file: str = "repo/test.csv",
    **read_csv,
) -> pd.DataFrame:
    """Read the submission and check its header and ids against `test_file`; `target_col` is one
    column or several (one per class); `read_csv` options (dtype, keep_default_na) go to pandas."""
    submission = Path(submission)
    header = [id_col, *([target_col] if isinstance(target_col, str) else target_col)]
    cols = ",".join(header)
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {cols}")
    try:
        df = pd.read_csv(submission, **read_csv)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {cols}"
        ) from None
    if list(df.columns) != header:
        raise ValueError(f"columns are {list(df.columns)}; expected exactly {header} (header row)")
    ids = pd.to_numeric(df[id_col], errors="coerce")
    if ids.isna().any() or not np.all(ids == ids.round()):
        raise ValueError(f"column {id_col}: every value must be an integer id from test.csv")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise ValueError(
            f"column {id_col}: duplicated ids, e.g. {int(dup.iloc[0])}; "
            "one row per test id expected"
        )
    expected = expected_ids(task_dir, id_col, test_file)
    missing = np.setdiff1d(expected, ids.to_numpy())
    extra = np.setdiff1d(ids.to_numpy(), expected)
    if len(missing) or len(extra):
        raise ValueError(
            f"column {id_col}: {len(missing)} test ids missing (e.g. {missing[:3].tolist()}) and "
            f"{len(extra)} ids not in test.csv (e.g. {extra[:3].tolist()}); expected exactly "
            f"the {len(expected)} ids of test.csv"
        )
    return df


def numeric_target(df: pd.DataFrame, id_col: str, target_col: str, expected: str) -> pd.Series:
    """The target column as finite numbers; `expected` says what a value should be."""
    values = pd.to_numeric(df[target_col], errors="coerce")
    if values.isna().any():
        bad = df.loc[values.isna(), id_col].iloc[0]
        raise ValueError(
            f"column {target_col}: missing or non-numeric value (e.g. id {bad}); "
            f"expected {expected}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {target_col}: values must be finite; expected {expected}")
    return values


def probability(df: pd.DataFrame, id_col: str, col: str) -> pd.Series:
    """The column as probabilities in [0, 1]."""
    p = numeric_target(df, id_col, col, "a probability in [0, 1]")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(
            f"column {col}: every value must be a probability in [0, 1] "
            f"(got min {p.min()}, max {p.max()})"
        )
    return p


def class_index(df: pd.DataFrame, id_col: str, col: str, n_classes: int, what: str) -> pd.Series:
    """The column as integer class indices 0..n_classes-1; `what` names one ("a digit")."""
    lab = pd.to_numeric(df[col], errors="coerce")
    bad = lab.isna() | (lab != lab.round()) | (lab < 0) | (lab >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"column {col}: {int(bad.sum())} values are not {what} (e.g. {df[col].iloc[i]!r} "
            f"for id {df[id_col].iloc[i]}); expected an integer 0-{n_classes - 1}"
        )
    return lab.astype(np.int64)


def split_labels(task_dir: Path, setting: str, splits: Sequence[str]) -> pd.DataFrame:
    """The private labels of the test rows in split `setting` (private/test_labels.csv)."""
    if setting not in splits:
        raise ValueError(f"unknown split {setting!r}; expected one of {tuple(splits)}")
    labels = pd.read_csv(Path(task_dir) / "private" / "test_labels.csv")
    return labels[labels["split"] == setting]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic with mid-ranks for ties."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    score = np.asarray(score, float)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # mid-rank of each distinct score
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
