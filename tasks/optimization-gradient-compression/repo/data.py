"""Data sets (fixed). Digits ship with scikit-learn; Fashion-MNIST comes from the Debian package
`dataset-fashion-mnist` (IDX files under /usr/share/datasets/fashion-mnist). Nothing is
downloaded. The training process only ever calls load_train() and load_test_images(); the test
labels are read by the trusted grader alone (test_labels())."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
FASHION_TRAIN, FASHION_TEST = 10000, 2000        # first n images of the train / t10k files
DIGITS_TEST = 497                                 # digits: 1300 train / 497 test, fixed split


def _fashion_file(name):
    path = os.path.join(FASHION_DIR, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package `dataset-fashion-mnist` "
            "(apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR")
    return path


def _idx(name, n):
    with gzip.open(_fashion_file(name), "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        per = int(np.prod(dims[1:])) if ndim > 1 else 1
        data = np.frombuffer(f.read(n * per), dtype=np.uint8)
    return data.reshape((n,) + tuple(dims[1:]))


def _fashion_images(name, n):
    x = _idx(name, n).astype(np.float32) / 255.0
    x = x.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4))          # 2x2 average pool -> 14x14
    return ((x - 0.2860) / 0.3200).reshape(n, 1, 14, 14).astype(np.float32)


def _digits():
    # the file behind sklearn.datasets.load_digits(), read without importing scikit-learn (slow)
    import importlib.util
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed (it ships the digits data set)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    raw = np.loadtxt(path, delimiter=",", dtype=np.float32)    # (1797, 65): 64 pixels + label
    x = ((raw[:, :64] / 16.0 - 0.3) / 0.4).reshape(-1, 8, 8)
    y = raw[:, 64].astype(np.int64)
    perm = np.random.RandomState(12345).permutation(len(x))
    return x[:, None], y, perm[DIGITS_TEST:], perm[:DIGITS_TEST]


def load_train(dataset):
    """-> (x float32 (n, 1, s, s), y int64 (n,))"""
    if dataset == "digits":
        x, y, tr, _ = _digits()
        return x[tr], y[tr]
    if dataset == "fashion14":
        return (_fashion_images("train-images-idx3-ubyte.gz", FASHION_TRAIN),
                _idx("train-labels-idx1-ubyte.gz", FASHION_TRAIN).astype(np.int64))
    raise ValueError(f"unknown dataset {dataset!r}")


def load_test_images(dataset):
    if dataset == "digits":
        x, _, _, te = _digits()
        return x[te]
    if dataset == "fashion14":
        return _fashion_images("t10k-images-idx3-ubyte.gz", FASHION_TEST)
    raise ValueError(f"unknown dataset {dataset!r}")


def test_labels(dataset):
    """Used only by the grader (outside the training run)."""
    if dataset == "digits":
        _, y, _, te = _digits()
        return y[te]
    if dataset == "fashion14":
        return _idx("t10k-labels-idx1-ubyte.gz", FASHION_TEST).astype(np.int64)
    raise ValueError(f"unknown dataset {dataset!r}")
