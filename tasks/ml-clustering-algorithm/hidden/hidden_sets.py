"""Data sets of the hidden settings (fixed; copied into the run's folder at the final evaluation
only, read by the harness parent and the grader, never by the clustering code).

- aniso: `k` Gaussians in 2-D, each stretched along its own random direction (axis ratio
  `ratio`), the shape of scikit-learn's anisotropic-blobs example with a transform per cluster.
- fashion: a random subset of the Fashion-MNIST training images (Debian's dataset-fashion-mnist),
  pixels / 255, projected on the subset's first `dim` principal components; 10 classes.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
KINDS = ("aniso", "fashion")


def _idx(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package `dataset-fashion-mnist`, which puts "
            f"Fashion-MNIST in {FASHION_DIR}"
        )
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _sizes(rng, n: int, k: int, alpha: float = 4.0) -> np.ndarray:
    """Unequal cluster sizes summing to n, each at least n / (4k) (as datasets.py draws them)."""
    share = rng.dirichlet(np.full(k, alpha))
    base = n // (4 * k)
    sizes = base + np.floor(share * (n - k * base)).astype(int)
    sizes[: n - sizes.sum()] += 1
    return sizes


def _aniso(rng, spec, labels_only=False):
    k, ratio, sep = spec["k"], spec["ratio"], spec["sep"]
    sizes = _sizes(rng, spec["n"], k)
    centres = []
    while len(centres) < k:
        c = rng.uniform(-spec["box"], spec["box"], 2)
        if all(np.linalg.norm(c - o) >= sep for o in centres):
            centres.append(c)
    X, y = [], []
    for i, (c, m) in enumerate(zip(centres, sizes)):
        a = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        z = rng.standard_normal((m, 2)) * np.array([ratio, 1.0]) * spec["std"]
        X.append(c + z @ rot.T)
        y.append(np.full(m, i))
    return np.concatenate(X), np.concatenate(y)


def _fashion(rng, spec, labels_only=False):
    labels = _idx(os.path.join(FASHION_DIR, "train-labels-idx1-ubyte.gz"))
    idx = np.sort(rng.choice(len(labels), spec["n"], replace=False))
    y = labels[idx].astype(np.int64)
    if labels_only:  # the grader: the classes without the projection
        return np.zeros((len(y), 0)), y
    images = _idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    x = images[idx].reshape(len(idx), -1).astype(np.float64) / 255.0
    x -= x.mean(axis=0)
    _, vecs = np.linalg.eigh(x.T @ x)  # principal axes, ascending variance
    return x @ vecs[:, ::-1][:, : spec["dim"]], y


MAKERS = {"aniso": _aniso, "fashion": _fashion}
