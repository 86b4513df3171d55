"""Build repo/ (public files) and private/ (test labels) of comp-slanted-digits.

Source: scikit-learn's bundled `load_digits` (1,797 handwritten digits, 8x8 pixels with 17
grey levels; the test part of the UCI "Optical Recognition of Handwritten Digits" set). Read
offline from scikit-learn's own data folder. Run once by hand:

    python prepare.py

- train: 1,000 digits (100 per class, stratified random), as released;
- test: the other 797 digits in two splits: `upright` (as released, 400 digits) and `slanted`
  (397 digits re-rendered as written by slanting writers: each image is upsampled 4x, sheared
  by a random factor of 0.3-0.5 to the right (italic), translated by up to one original pixel,
  downsampled by 4x4 block means and rounded back to the 0-16 grey levels).
Rows are shuffled and get fresh random ids. Deterministic (fixed seed); outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import affine_transform, zoom
from sklearn.datasets import load_digits

SEED = 19980701  # UCI optdigits, July 1998
N_TRAIN_PER_CLASS, N_UPRIGHT = 100, 400
UP = 4  # upsampling factor of the re-rendering
HERE = Path(__file__).resolve().parent


def slant(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-render one 8x8 digit sheared to the right and moved by up to one pixel."""
    big = zoom(img.astype(float), UP, order=1)
    shear = rng.uniform(0.3, 0.5)
    dy, dx = rng.integers(-UP, UP + 1, size=2)
    c = (big.shape[0] - 1) / 2.0
    # output (r, col) reads input (r - dy, col + shear * (r - c) - dx): the top leans right
    matrix = np.array([[1.0, 0.0], [shear, 1.0]])
    offset = np.array([-dy, -shear * c - dx])
    out = affine_transform(big, matrix, offset=offset, order=1, mode="constant")
    small = out.reshape(8, UP, 8, UP).mean(axis=(1, 3))
    return np.clip(np.round(small), 0, 16).astype(np.int64)


def main() -> None:
    digits = load_digits()
    x, y = digits.images.astype(np.int64), digits.target
    rng = np.random.default_rng(SEED)
    train = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), N_TRAIN_PER_CLASS, replace=False) for c in range(10)]
    )
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), train))
    upright, slanted = rest[:N_UPRIGHT], rest[N_UPRIGHT:]
    test = np.concatenate([upright, slanted])
    split = np.array(["upright"] * len(upright) + ["slanted"] * len(slanted))
    test_images = x[test].copy()
    for k in range(len(upright), len(test)):
        test_images[k] = slant(test_images[k], rng)

    ids = rng.choice(np.arange(10000, 100000), size=len(train) + len(test), replace=False)
    tr_ids, te_ids = ids[: len(train)], ids[len(train) :]
    pix = [f"p{r}{c}" for r in range(8) for c in range(8)]

    def table(idx, images, with_label):
        df = pd.DataFrame(images.reshape(len(images), 64), columns=pix)
        df.insert(0, "id", idx)
        if with_label is not None:
            df["label"] = with_label
        return df.sort_values("id").reset_index(drop=True)

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    table(tr_ids, x[train], y[train]).to_csv(repo / "train.csv", index=False)
    test_df = table(te_ids, test_images, None)
    test_df.to_csv(repo / "test.csv", index=False)
    pd.DataFrame({"id": test_df["id"], "label": 0}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels = pd.DataFrame({"id": te_ids, "label": y[test], "split": split}).sort_values("id")
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {len(train)}, test {len(test)} ({len(slanted)} slanted)")


if __name__ == "__main__":
    main()
