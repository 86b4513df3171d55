"""7x7 neighbourhoods of every pixel (reflect-padded), one row per pixel, and the writer of a
submission (one row per image: 784 intensities in [0, 1], row by row)."""

import numpy as np
import pandas as pd

R = 3  # patch radius: 7x7


def patches(images: np.ndarray, r: int = R) -> np.ndarray:
    padded = np.pad(images, ((0, 0), (r, r), (r, r)), mode="reflect")
    k = 2 * r + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))
    return windows.reshape(-1, k * k)


def write_submission(ids: np.ndarray, images: np.ndarray, path: str = "submission.csv") -> None:
    flat = np.clip(images, 0.0, 1.0).reshape(len(ids), -1)
    rows = [" ".join(f"{v:.3f}" for v in row) for row in flat]
    pd.DataFrame({"id": ids, "pixels": rows}).to_csv(path, index=False)
    print(f"wrote {path} ({len(ids)} rows)")
