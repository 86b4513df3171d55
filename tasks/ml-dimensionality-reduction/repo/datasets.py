"""The data of each setting (fixed). Only the harness parent process (run.py) and the grader use
this module; the embedding code never reads a file or sees a label: the parent hands it the
points as an array.

A setting is a spec (kind, n and the kind's parameters). Its instance (which points are drawn, the
noise) comes from sha256(instance key | setting | seed). Kinds:

- digits: n of scikit-learn's 1797 8x8 digit images (64 features in [0, 1]); label = the digit.
- fashion: n of Fashion-MNIST's 60,000 training images (784 features in [0, 1]), read from
  Debian's dataset-fashion-mnist; label = the garment class (10).
- s_curve: scikit-learn's S-curve (sklearn.datasets.make_s_curve's formula, written out so that
  the noise-free manifold coordinates are kept): t ~ U(-3 pi / 2, 3 pi / 2), height ~ U(0, 2),
  x = (sin t, height, sign(t) (cos t - 1)) + noise N(0, noise^2 I). No classes: the targets are
  the two manifold coordinates (t, height).
- other kinds (the final evaluation's hidden settings) come with their own generator module.

Tests use the public key below; the final evaluation supplies a secret key over the environment's
secrets channel, so the final instances differ from every instance seen in a test.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass

import numpy as np

PUBLIC_KEY = "public"
K = 7  # neighbours of every metric
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

SETTINGS = {
    "digits": dict(kind="digits", n=1000),
    "fashion-mnist": dict(kind="fashion", n=2000),
    "s-curve": dict(kind="s_curve", n=1000, noise=0.1),
}
KINDS = ("digits", "fashion", "s_curve", "bow")
MAX_N = 2000


@dataclass
class Data:
    """What the parent holds: the points X (handed to the embedding), and either class labels
    (classification settings) or continuous targets (n x m manifold coordinates)."""

    X: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None


def check_spec(spec: dict) -> dict:
    """The spec with its fields checked; ValueError saying what is wrong."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"setting kind must be one of {KINDS}, got {kind!r}")
    n = spec.get("n")
    if not isinstance(n, int) or not 50 <= n <= MAX_N:
        raise ValueError(f"setting n must be an integer in [50, {MAX_N}], got {n!r}")
    return spec


def instance_rng(name: str, seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _idx(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package dataset-fashion-mnist "
            f"(apt-get install dataset-fashion-mnist), which puts Fashion-MNIST in {FMNIST_DIR}"
        )
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _subset(X: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> Data:
    if n > len(y):
        raise ValueError(f"n = {n} is more than the {len(y)} points of the data set")
    idx = np.sort(rng.choice(len(y), size=n, replace=False))
    return Data(np.ascontiguousarray(X[idx], dtype=np.float64), y[idx].astype(np.int64), None)


def s_curve(n: int, noise: float, rng: np.random.Generator) -> Data:
    t = 3 * np.pi * (rng.uniform(size=n) - 0.5)
    height = 2.0 * rng.uniform(size=n)
    X = np.stack([np.sin(t), height, np.sign(t) * (np.cos(t) - 1)], axis=1)
    X += noise * rng.standard_normal((n, 3))
    return Data(X, None, np.stack([t, height], axis=1))


def load(name: str, spec: dict, seed: int, key: str, generators: dict | None = None) -> Data:
    """The instance of setting ``name`` for ``seed`` under ``key``. ``generators`` maps a kind
    this module does not know to a module whose ``generate(spec, rng)`` returns (X, labels)."""
    spec = check_spec(spec)
    rng = instance_rng(name, seed, key)
    kind, n = spec["kind"], spec["n"]
    if kind == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _subset(d.data / 16.0, d.target, n, rng)
    if kind == "fashion":
        X = _idx(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))
        y = _idx(os.path.join(FMNIST_DIR, "train-labels-idx1-ubyte.gz"))
        idx = np.sort(rng.choice(len(y), size=n, replace=False))
        return Data(X[idx].reshape(n, -1) / 255.0, y[idx].astype(np.int64), None)
    if kind == "s_curve":
        return s_curve(n, float(spec.get("noise", 0.1)), rng)
    if generators and kind in generators:
        X, labels = generators[kind].generate(spec, rng)
        return Data(np.ascontiguousarray(X, dtype=np.float64), labels, None)
    raise ValueError(f"no generator for setting kind {kind!r}")
