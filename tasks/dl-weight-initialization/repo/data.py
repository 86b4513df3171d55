"""Data of the settings (fixed; read by the harness parent and the grader, never by the child
that runs the agent's initializer). Digits ship with scikit-learn (its digits.csv.gz, read
without importing scikit-learn); Fashion-MNIST comes from the Debian package
`dataset-fashion-mnist` (IDX files under /usr/share/datasets/fashion-mnist). Nothing is
downloaded.

Every instance is drawn from (instance key, setting, seed): which examples train and which test,
a permutation of the class labels and, for the MLPs, a permutation of the input features (for
the CNN a flip/rotation of the images). Test runs use the public key; the final evaluation a
secret one, so that no weights fitted to the public instances transfer to the final ones.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct

import numpy as np

PUBLIC_KEY = "public"
FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
FASHION_POOL = 8000  # the first images of the train file; each instance samples from them


def rng_for(key: str, name: str, seed: int, what: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{what}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _fashion(n: int) -> tuple[np.ndarray, np.ndarray]:
    def idx(name, count):
        path = os.path.join(FASHION_DIR, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: install the Debian package `dataset-fashion-mnist`"
            )
        with gzip.open(path, "rb") as f:
            ndim = struct.unpack(">I", f.read(4))[0] & 0xFF
            dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
            per = int(np.prod(dims[1:])) if ndim > 1 else 1
            data = np.frombuffer(f.read(count * per), dtype=np.uint8)
        return data.reshape((count, *dims[1:]))

    x = idx("train-images-idx3-ubyte.gz", n).astype(np.float32) / 255.0
    x = x.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4))  # 2x2 average pool -> 14x14
    y = idx("train-labels-idx1-ubyte.gz", n).astype(np.int64)
    return (x - 0.2860) / 0.3200, y


def _digits() -> tuple[np.ndarray, np.ndarray]:
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed (it ships the digits data set)")
    root = list(spec.submodule_search_locations)[0]
    raw = np.loadtxt(os.path.join(root, "datasets", "data", "digits.csv.gz"), delimiter=",")
    x = (raw[:, :64].astype(np.float32) / 16.0 - 0.3) / 0.4
    return x.reshape(-1, 8, 8), raw[:, 64].astype(np.int64)


def instance(name: str, spec: dict, seed: int, key: str) -> dict:
    """The arrays of one run: x_train (n, 1, s, s) or (n, s*s) float32, y_train, x_test, y_test
    (int64, labels already permuted)."""
    if spec["data"] == "digits":
        x, y = _digits()
    elif spec["data"] == "fashion":
        x, y = _fashion(FASHION_POOL)
    else:
        raise ValueError(f"unknown data {spec['data']!r}: expected digits or fashion")
    rng = rng_for(key, name, seed, "data")
    order = rng.permutation(len(x))
    n_train, n_test = int(spec["n_train"]), int(spec["n_test"])
    if n_train + n_test > len(x):
        raise ValueError(f"n_train + n_test = {n_train + n_test} > {len(x)} examples")
    tr, te = order[:n_train], order[n_train : n_train + n_test]
    labels = rng.permutation(10)
    y = labels[y]
    if spec["arch"] == "cnn":
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        x = np.rot90(x, k, axes=(1, 2))
        x = (x[:, :, ::-1] if flip else x)[:, None]
    else:
        x = x.reshape(len(x), -1)[:, rng.permutation(x.shape[1] * x.shape[2])]
    x = np.ascontiguousarray(x, dtype=np.float32)
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


def test_labels(name: str, spec: dict, seed: int, key: str) -> np.ndarray:
    return instance(name, spec, seed, key)["y_test"]
