"""Long-tailed data sets (fixed): the visible settings, the data files and the instance draw.

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (IDX files under
/usr/share/datasets/fashion-mnist), average-pooled to 14 x 14; digits ship with scikit-learn
(8 x 8). Nothing is downloaded. Only the harness's parent process (run.py) and the trusted grader
read these files; the training process gets the training arrays from the parent and never sees a
test image or label.

An instance (which class is the head and which the tail, which images form the long-tailed
training set and the balanced test set) is drawn from the setting, the run's seed and a key: the
public key in tests, a secret one at the final evaluation. Class sizes follow the exponential
profile of Cui et al. (CVPR 2019): the class of rank r (0 = head) keeps
floor(n_max * imbalance ** (-r / (C - 1))) training images, at least one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct

import numpy as np

PUBLIC_KEY = "public-instances-v0"
FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
N_CLASSES = 10

SETTINGS = {
    "fmnist-ir100": {"data": "fashion14", "arch": "mlp", "imbalance": 100, "n_max": 1500,
                     "n_test": 300, "steps": 400, "batch": 128, "lr": 2e-3},
    "digits-ir100": {"data": "digits", "arch": "mlp", "imbalance": 100, "n_max": 120,
                     "n_test": 50, "steps": 300, "batch": 64, "lr": 2e-3},
}
KEYS = {"data": str, "arch": str, "imbalance": (int, float), "n_max": int, "n_test": int,
        "steps": int, "batch": int, "lr": float}


def check_spec(spec: dict) -> dict:
    """A setting's spec with every field of the right type (a spec file kept back included)."""
    missing = sorted(set(KEYS) - set(spec))
    if missing:
        raise ValueError(f"setting spec lacks {missing}")
    for k, t in KEYS.items():
        if not isinstance(spec[k], t) or isinstance(spec[k], bool):
            raise ValueError(f"setting spec: {k} must be {t}, got {spec[k]!r}")
    if spec["data"] not in ("fashion14", "digits") or spec["arch"] not in ("mlp", "cnn"):
        raise ValueError(f"setting spec: unknown data {spec['data']!r} or arch {spec['arch']!r}")
    return spec


def class_sizes(spec: dict) -> np.ndarray:
    """Training images per class rank (0 = head), the exponential profile."""
    r = np.arange(N_CLASSES)
    sizes = np.floor(spec["n_max"] * float(spec["imbalance"]) ** (-r / (N_CLASSES - 1)))
    return np.maximum(sizes, 1).astype(np.int64)


def _rng(name: str, seed: int, key: str, what: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{what}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ---------------------------------------------------------------------------- the data files
def _idx(name: str) -> np.ndarray:
    path = os.path.join(FASHION_DIR, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package `dataset-fashion-mnist` "
            "(apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR"
        )
    with gzip.open(path, "rb") as f:
        ndim = struct.unpack(">I", f.read(4))[0] & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def _digits_raw() -> np.ndarray:
    # the file behind sklearn.datasets.load_digits(), read without importing scikit-learn (slow)
    import importlib.util

    found = importlib.util.find_spec("sklearn")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed (it ships the digits data set)")
    root = list(found.submodule_search_locations)[0]
    path = os.path.join(root, "datasets", "data", "digits.csv.gz")
    return np.loadtxt(path, delimiter=",", dtype=np.float32)  # (1797, 65): 64 pixels + label


def labels(data: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels of the training pool, labels of the test pool); digits: one pool for both."""
    if data == "fashion14":
        return (_idx("train-labels-idx1-ubyte.gz").astype(np.int64),
                _idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    y = _digits_raw()[:, 64].astype(np.int64)
    return y, y


def images(data: str, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training and test images of an instance (indices into the two pools), standardized
    float32 (n, 1, s, s)."""
    if data == "fashion14":
        pools = []
        for name, rows in (("train-images-idx3-ubyte.gz", train), ("t10k-images-idx3-ubyte.gz", test)):
            x = _idx(name)[rows].astype(np.float32) / 255.0
            x = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))  # 2x2 average pool -> 14x14
            pools.append(((x - 0.2860) / 0.3200)[:, None].astype(np.float32))
        return pools[0], pools[1]
    x = ((_digits_raw()[:, :64] / 16.0 - 0.3) / 0.4).reshape(-1, 1, 8, 8).astype(np.float32)
    return x[train], x[test]


# ------------------------------------------------------------------------------ the instance
def split(name: str, spec: dict, seed: int, key: str, y_pool: np.ndarray, y_test_pool):
    """(training indices into the training pool, test indices into the test pool). The class
    ranks are a permutation drawn from the key; each class's images are drawn without
    replacement (digits: the test images first, then the training images from the rest)."""
    rng = _rng(name, seed, key, "split")
    order = rng.permutation(N_CLASSES)  # order[r] = the class of rank r
    sizes = class_sizes(spec)
    train, test = [], []
    shared = spec["data"] == "digits"
    for r, c in enumerate(order):
        pool = rng.permutation(np.flatnonzero(y_pool == c))
        if shared:
            test.append(pool[: spec["n_test"]])
            pool = pool[spec["n_test"] :]
        else:
            test.append(rng.permutation(np.flatnonzero(y_test_pool == c))[: spec["n_test"]])
        if len(pool) < sizes[r] or len(test[-1]) < spec["n_test"]:
            raise ValueError(f"{name}: class {c} has too few images for this spec")
        train.append(pool[: sizes[r]])
    train = np.concatenate(train)
    return train[rng.permutation(len(train))], np.sort(np.concatenate(test))


def test_labels(name: str, spec: dict, seed: int, key: str) -> np.ndarray:
    """The labels of an instance's test set (the grader's; the training process never has them)."""
    y_pool, y_test_pool = labels(spec["data"])
    _, test = split(name, spec, seed, key, y_pool, y_test_pool)
    return y_test_pool[test]


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> tuple[float, list[float]]:
    """The mean over classes of the recall (the test set is balanced, so it is also the
    accuracy), and each class's recall."""
    recall = [float(np.mean(pred[y == c] == c)) for c in range(N_CLASSES) if np.any(y == c)]
    return float(np.mean(recall)), recall
