"""Data sets of the visible settings (fixed). Only the harness parent process (run.py) and the
grader use this module; the clustering code never sees a label, a generator or a key, only the
points.

A setting is a spec: its `kind` and the kind's parameters. One run draws one instance from
sha256(instance key | setting | seed); tests use the public key below, the final evaluation a
secret one. Kinds (the hidden settings' kinds live in hidden/, copied in at the final evaluation):

- blobs: `k` isotropic Gaussians in `dim` dimensions, unequal sizes and spreads, centres drawn
  uniformly in a box with a minimum separation.
- moons: scikit-learn's two interleaving half circles (`make_moons` recipe) with Gaussian noise.
- varied: `k` isotropic Gaussians in 2-D whose standard deviations differ by up to 8x.
- digits: a random subset of scikit-learn's 8x8 handwritten digits (pixels / 16, 64-D), 10
  classes, in a random orthonormal basis of R^64.

The points of every kind are shuffled; `make` returns (X float64 (n, dim), y int64 (n,)).
"""

from __future__ import annotations

import hashlib

import numpy as np

PUBLIC_KEY = "public"

SETTINGS = {
    "blobs-k8-d10": dict(kind="blobs", n=2000, k=8, dim=10, box=3.0, std=[0.8, 2.0]),
    "moons": dict(kind="moons", n=1500, noise=0.12),
    "varied-density": dict(kind="varied", n=2000, k=5, std=[0.25, 2.0], sep=1.3),
    "digits": dict(kind="digits", n=1500),
}
KINDS = ("blobs", "moons", "varied", "digits")


def instance_rng(key: str, name: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def check_spec(spec: dict, kinds=KINDS) -> dict:
    """The spec with its fields checked; ValueError saying what is wrong."""
    if spec.get("kind") not in kinds:
        raise ValueError(f"setting kind must be one of {kinds}, got {spec.get('kind')!r}")
    n = spec.get("n")
    if not isinstance(n, int) or not 50 <= n <= 10000:
        raise ValueError(f"setting n must be an integer in [50, 10000], got {n!r}")
    return spec


def _centres(rng, k: int, dim: int, box: float, min_sep: float) -> np.ndarray:
    """k centres uniform in [-box, box]^dim, each at least min_sep from the others."""
    out = []
    while len(out) < k:
        c = rng.uniform(-box, box, dim)
        if all(np.linalg.norm(c - o) >= min_sep for o in out):
            out.append(c)
    return np.array(out)


def _sizes(rng, n: int, k: int, alpha: float = 4.0) -> np.ndarray:
    """Unequal cluster sizes summing to n, each at least n / (4k)."""
    share = rng.dirichlet(np.full(k, alpha))
    base = n // (4 * k)
    sizes = base + np.floor(share * (n - k * base)).astype(int)
    sizes[: n - sizes.sum()] += 1
    return sizes


def gaussian_mixture(rng, centres, stds, sizes) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate(
        [c + s * rng.standard_normal((m, len(c))) for c, s, m in zip(centres, stds, sizes)]
    )
    y = np.repeat(np.arange(len(sizes)), sizes)
    return X, y


def _blobs(rng, spec, labels_only=False):
    k, dim = spec["k"], spec["dim"]
    lo, hi = spec["std"]
    centres = _centres(rng, k, dim, spec["box"], min_sep=2.5 * hi)
    return gaussian_mixture(rng, centres, rng.uniform(lo, hi, k), _sizes(rng, spec["n"], k))


def _moons(rng, spec, labels_only=False):
    n = spec["n"]
    n_out = n // 2
    t_out = rng.uniform(0, np.pi, n_out)
    t_in = rng.uniform(0, np.pi, n - n_out)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], axis=1)
    X = np.concatenate([outer, inner]) + spec["noise"] * rng.standard_normal((n, 2))
    return X, np.repeat([0, 1], [n_out, n - n_out])


def _varied(rng, spec, labels_only=False):
    k = spec["k"]
    lo, hi = spec["std"]
    stds = np.exp(rng.uniform(np.log(lo), np.log(hi), k))
    stds[:2] = lo, hi  # the extremes are always present
    rng.shuffle(stds)
    # separation scaled to the pair's spreads: dense clusters sit close to diffuse ones
    centres = []
    while len(centres) < k:
        c = rng.uniform(-10, 10, 2)
        i = len(centres)
        gaps = [np.linalg.norm(c - o) / (stds[i] + stds[j]) for j, o in enumerate(centres)]
        if all(g >= spec["sep"] for g in gaps):
            centres.append(c)
    return gaussian_mixture(rng, np.array(centres), stds, _sizes(rng, spec["n"], k))


def _digits(rng, spec, labels_only=False):
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = rng.choice(len(d.target), spec["n"], replace=False)
    # a random rotation of the 64-D pixel space: Euclidean geometry is unchanged, but the
    # pixels' meaning is gone, so code cannot carry a classifier or a lookup table of the
    # public digits into the clustering
    q, r = np.linalg.qr(rng.standard_normal((64, 64)))
    q *= np.sign(np.diag(r))
    return d.data[idx] / 16.0 @ q, d.target[idx].astype(np.int64)


MAKERS = {"blobs": _blobs, "moons": _moons, "varied": _varied, "digits": _digits}


def make(name: str, spec: dict, seed: int, key: str, makers=None, labels_only=False):
    """(X, y) of the setting `name` for this seed and key, shuffled; n_clusters = len(set(y)).
    `labels_only` lets a kind skip work that only X needs (X may then be empty)."""
    rng = instance_rng(key, name, seed)
    X, y = (makers or MAKERS)[spec["kind"]](rng, spec, labels_only)
    perm = rng.permutation(len(y))
    return np.ascontiguousarray(X[perm], dtype=np.float64), y[perm].astype(np.int64)
