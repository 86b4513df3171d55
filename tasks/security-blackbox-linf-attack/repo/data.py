"""Test images for the attacks (fixed file): scikit-learn's digits and Fashion-MNIST, in [0, 1]."""
from __future__ import annotations

import gzip
import os

import numpy as np

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _idx(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package `dataset-fashion-mnist` "
            "(apt-get install dataset-fashion-mnist), which puts Fashion-MNIST in " + FMNIST_DIR)
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): x float32 (n, 1, side, side) in [0, 1], y int64. split: 'train' or 'test'."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.images / 16.0).astype(np.float32)[:, None]
        y = d.target.astype(np.int64)
        # fixed split: a fixed permutation, the last 597 images (1/3) are the test set
        perm = np.random.default_rng(1234).permutation(len(y))
        idx = perm[:1200] if split == "train" else perm[1200:]
        return x[idx], y[idx]
    if dataset == "fmnist":
        tag = "train" if split == "train" else "t10k"
        x = _idx(os.path.join(FMNIST_DIR, f"{tag}-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
        y = _idx(os.path.join(FMNIST_DIR, f"{tag}-labels-idx1-ubyte.gz")).astype(np.int64)
        return x[:, None], y
    raise ValueError(f"unknown dataset {dataset!r}")
