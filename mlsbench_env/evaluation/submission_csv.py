"""Format checks that competition graders share: a submission is a CSV with exactly the columns
(id, target) and one row for every id of the task's public test file.

A grader's `validate` calls `read_submission`, then checks the target column its own way
(`numeric_target` for numbers). Every failure is a ValueError whose message says what was wrong
and what is expected: the agent reads it through the `validate` tool. Needs pandas (the graders'
dependency, not the core's).
"""

from __future__ import annotations

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
    target_col: str,
    test_file: str = "repo/test.csv",
    **read_csv,
) -> pd.DataFrame:
    """Read the submission and check its header and ids against `test_file`; `read_csv` options
    (dtype, keep_default_na) go to pandas."""
    submission = Path(submission)
    cols = f"{id_col},{target_col}"
    if not submission.is_file():
        raise ValueError(f"{submission.name} not found: write a CSV with columns {cols}")
    try:
        df = pd.read_csv(submission, **read_csv)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a format error
        raise ValueError(
            f"{submission.name} is not a readable CSV ({exc}); expected columns {cols}"
        ) from None
    if list(df.columns) != [id_col, target_col]:
        raise ValueError(
            f"columns are {list(df.columns)}; expected exactly ['{id_col}', '{target_col}'] "
            "(header row)"
        )
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
