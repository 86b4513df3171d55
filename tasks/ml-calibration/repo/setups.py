"""Data, classifiers, splits and metrics of the calibration settings (fixed). Only the harness
parent (run.py) and the grader use this module; the calibrator never sees a feature, a
classifier or a test label, only scores and the labels of the calibration split.

A setting is a spec: a data set, a classifier, the size of its training set, the sizes of the
calibration and test splits drawn from the rest (the pool), and `n_splits`, how many times the
pool is split again (each split is one fit of the calibrator; the metrics are their mean). Every
draw comes from sha256(instance key | setting | seed | stream), so tests (the public key) and the
final evaluation (a secret key) see different training sets, splits and generated data.

Scores handed to the calibrator (n, K) and their `kind`:
- "probability": the classifier's predict_proba (random forest, gradient boosting);
- "logit": unnormalized log-probabilities (the MLP's pre-softmax outputs; a binary margin f
  as the two columns [0, f]); softmax gives the uncalibrated probabilities.

Metrics, on the calibrated test probabilities P (n, K) and labels y:
- ece: expected calibration error of the top label (Guo et al. 2017), 15 equal-width bins of
  the confidence max_k P[i, k] over [0, 1]: sum_b |B_b| / n * |acc(B_b) - conf(B_b)|.
- nll: mean of -ln max(P[i, y_i], 1e-12) (reported, not scored).
"""

from __future__ import annotations

import gzip
import hashlib
import os

import numpy as np

PUBLIC_KEY = "public"
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
N_BINS = 15
NLL_EPS = 1e-12

SETTINGS = {
    "rf-digits": dict(data="digits", model="random_forest", n_train=500, n_cal=400,
                      n_test=800, n_splits=4),
    "mlp-fashion": dict(data="fashion_mnist", model="mlp", n_train=1000, n_cal=1000,
                        n_test=3000, n_splits=3, pool=4000),
    "gbm-madelon": dict(data="madelon", model="gbm", n_train=1500, n_cal=800, n_test=2000,
                        n_splits=3),
}
KINDS = {"random_forest": "probability", "gbm": "probability", "mlp": "logit"}


def rng(key: str, name: str, seed: int, stream: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _idx(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package `dataset-fashion-mnist`, which puts "
            f"Fashion-MNIST in {FMNIST_DIR}"
        )
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(name: str, spec: dict, seed: int, key: str, labels_only: bool = False):
    """(X, y) of the whole data set of a setting; X is None with ``labels_only``."""
    data = spec["data"]
    if data == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (None if labels_only else d.data / 16.0), d.target.astype(np.int64)
    if data == "fashion_mnist":
        y = _idx(os.path.join(FMNIST_DIR, "train-labels-idx1-ubyte.gz")).astype(np.int64)
        if labels_only:
            return None, y
        x = _idx(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz"))
        return x.reshape(len(x), -1).astype(np.float32) / 255.0, y
    if data == "madelon":
        from sklearn.datasets import make_classification

        # Madelon (Guyon et al., NIPS 2003 feature selection challenge): points on the vertices
        # of a hypercube in a few informative dimensions, linear combinations of them, and many
        # noise features; here 100 features, 20 of them useful, 2% of labels flipped.
        n = spec["n_train"] + spec["n_cal"] + spec["n_test"]
        seed_data = int(rng(key, name, seed, "data").integers(2**31))
        x, y = make_classification(
            n_samples=n, n_features=100, n_informative=5, n_redundant=15, n_repeated=0,
            n_classes=2, n_clusters_per_class=8, flip_y=0.02, class_sep=1.5,
            random_state=seed_data,
        )
        return (None if labels_only else x), y.astype(np.int64)
    if "module" in spec:
        import importlib

        return importlib.import_module(spec["module"]).load(spec, labels_only)
    raise ValueError(f"unknown data set {data!r}")


def partition(name: str, spec: dict, seed: int, key: str, n: int):
    """(train indices, [(cal indices, test indices)] * n_splits) into a data set of n points."""
    perm = rng(key, name, seed, "train").permutation(n)
    n_train = spec["n_train"]
    pool = perm[n_train : n_train + spec.get("pool", spec["n_cal"] + spec["n_test"])]
    if len(pool) < spec["n_cal"] + spec["n_test"]:
        raise ValueError(f"{name}: {n} points do not hold the train, calibration and test splits")
    splits = []
    for s in range(spec["n_splits"]):
        p = rng(key, name, seed, f"split{s}").permutation(pool)
        splits.append((p[: spec["n_cal"]], p[spec["n_cal"] : spec["n_cal"] + spec["n_test"]]))
    return perm[:n_train], splits


def _classifier(model: str, seed: int):
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    if model == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False,
            random_state=seed,
        )
    if model == "mlp":
        from sklearn.neural_network import MLPClassifier

        # no early stopping and no weight decay to speak of: trained to fit the training set,
        # the network ends overconfident (Guo et al. 2017)
        return MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-5, batch_size=128,
                             learning_rate_init=1e-3, max_iter=60, random_state=seed)
    raise ValueError(f"unknown classifier {model!r}")


def scores(model, clf, x: np.ndarray) -> np.ndarray:
    """The (n, K) scores the calibrator receives (see the module docstring)."""
    if model == "mlp":
        # the pre-softmax outputs of sklearn's MLP: hidden ReLU layer, then the output layer
        h = np.maximum(x @ clf.coefs_[0] + clf.intercepts_[0], 0.0)
        z = h @ clf.coefs_[1] + clf.intercepts_[1]
        return z.astype(np.float64)
    return np.asarray(clf.predict_proba(x), dtype=np.float64)


def train_and_score(name: str, spec: dict, seed: int, key: str):
    """Train the setting's classifier; returns (kind, n_classes, scores of every point, y,
    splits). Only the pool's scores are used."""
    import warnings

    x, y = load(name, spec, seed, key)
    train, splits = partition(name, spec, seed, key, len(y))
    if "module" in spec:
        import importlib

        module = importlib.import_module(spec["module"])
        kind, s = module.train_and_score(spec, seed, x[train], y[train], x)
        return kind, int(y.max()) + 1, s, y, splits
    clf = _classifier(spec["model"], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLP's "not converged" is the point of it
        clf.fit(x[train], y[train])
    return KINDS[spec["model"]], int(y.max()) + 1, scores(spec["model"], clf, x), y, splits


def uncalibrated(kind: str, s: np.ndarray) -> np.ndarray:
    if kind == "probability":
        return s
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_probs(p: np.ndarray, n: int, k: int) -> str | None:
    """Why ``p`` is not an (n, k) array of probability rows, or None."""
    if p.shape != (n, k):
        return f"shape {p.shape}, expected ({n}, {k})"
    if not np.all(np.isfinite(p)):
        return "values that are not finite"
    if p.min() < 0.0 or p.max() > 1.0:
        return f"values outside [0, 1] (min {p.min():.3g}, max {p.max():.3g})"
    worst = float(np.abs(p.sum(axis=1) - 1.0).max())
    if worst > 1e-6:
        return f"rows that do not sum to 1 (off by up to {worst:.3g}; tolerance 1e-6)"
    return None


def ece(p: np.ndarray, y: np.ndarray, n_bins: int = N_BINS) -> float:
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin b holds confidences in (b/B, (b+1)/B]; a confidence of exactly 0 goes to bin 0
    b = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for i in range(n_bins):
        m = b == i
        if m.any():
            total += m.sum() * abs(correct[m].mean() - conf[m].mean())
    return float(total / len(y))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], NLL_EPS)).mean())
