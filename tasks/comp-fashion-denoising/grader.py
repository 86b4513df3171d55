"""Trusted grader of comp-fashion-denoising: RMSE of denoised pixel intensities per split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlsbench_env.evaluation.submission_csv import read_submission

ID, TARGET = "id", "pixels"
N_PIXELS = 28 * 28
SPLITS = ("moderate-noise", "heavy-noise")


def _read(submission: Path, task_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ids, images (n, 784) in [0, 1]) of a submission whose format has been checked."""
    df = read_submission(submission, task_dir, ID, TARGET, dtype={TARGET: str})
    images = np.empty((len(df), N_PIXELS))
    for k, (i, text) in enumerate(zip(df[ID], df[TARGET].fillna(""), strict=True)):
        parts = str(text).split()
        if len(parts) != N_PIXELS:
            raise ValueError(
                f"column {TARGET}: id {i} has {len(parts)} values; expected {N_PIXELS} "
                "space-separated intensities (28 rows of 28, row by row)"
            )
        try:
            row = np.array(parts, dtype=float)
        except ValueError:
            raise ValueError(
                f"column {TARGET}: id {i} has a value that is not a number; expected "
                f"{N_PIXELS} space-separated intensities in [0, 1]"
            ) from None
        if not np.all(np.isfinite(row)) or row.min() < 0 or row.max() > 1:
            raise ValueError(
                f"column {TARGET}: id {i} has values outside [0, 1] (min {row.min()}, "
                f"max {row.max()}); expected intensities in [0, 1]"
            )
        images[k] = row
    return pd.to_numeric(df[ID]).to_numpy(np.int64), images


def validate(submission: Path, task_dir: Path) -> str:
    """Check the submission's format only (no clean images are read); return a summary."""
    ids, images = _read(submission, task_dir)
    return (
        f"OK: {len(ids)} rows of {N_PIXELS} intensities, ids match test.csv, "
        f"mean intensity {images.mean():.4f}"
    )


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    """Root mean squared error over every pixel of the test images of split `setting`."""
    del seed
    if setting not in SPLITS:
        raise ValueError(f"unknown split {setting!r}; expected one of {SPLITS}")
    ids, images = _read(Path(out_dir) / "submission.csv", task_dir)
    with np.load(Path(task_dir) / "private" / "test_clean.npz") as truth:
        keep = truth["split"] == setting
        clean = truth["clean"][keep].reshape(int(keep.sum()), N_PIXELS) / 255.0
        want = truth["ids"][keep]
    pred = images[pd.Index(ids).get_indexer(want)]
    return {"rmse": float(np.sqrt(np.mean((pred - clean) ** 2)))}
