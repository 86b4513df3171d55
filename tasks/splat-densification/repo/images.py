"""The target images of each setting (fixed file).

A setting fits `n_images` images of `size` x `size` RGB pixels, each with at most `cap` Gaussians.
The images are drawn from the run's seed, so every seed is a fresh set of instances of the same
class of image:
  photo sources   a crop of a bundled photograph (scikit-learn's sample images china / flower, stored
                  at half resolution in data/*.npy), of side size*k (k in {1, 2, 3}), box-averaged
                  k x k down to size x size (the most detailed of 6 random crops), randomly flipped /
                  transposed;
  "strokes"       synthetic images with fine detail: thin anti-aliased line segments, small dots and
                  a patch of high-frequency stripes over a smooth colour gradient (rendered 4x
                  supersampled, box-averaged).
At the final evaluation the harness receives a salt (an integer unknown to the policy's author, over
the environment's secrets channel, never a file) that is mixed into every seed, so the final images
cannot be known in advance; without it the salt is 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# the fixed training recipe shared by every setting (harness.py)
STEPS = 300            # optimizer steps per image
INTERVAL = 25          # the policy is called after every INTERVAL steps (not after the last one)
CANDIDATES = 6         # photo crops: the most detailed of this many random crops

SETTINGS = {
    "china-40px-cap80": dict(source="china", size=40, cap=80, n_init=12, n_images=2, base_seed=101),
    "flower-48px-cap112": dict(source="flower", size=48, cap=112, n_init=16, n_images=2, base_seed=102),
    "strokes-40px-cap96": dict(source="strokes", size=40, cap=96, n_init=12, n_images=2, base_seed=103),
}


def load_salt(path: str | Path | None = None, text: str | None = None) -> int:
    """The salt: from ``path`` (the grader's copy) or ``text`` (the secrets channel), else 0."""
    if path is not None:
        p = Path(path)
        text = p.read_text() if p.is_file() else None
    return int(json.loads(text)["salt"]) if text else 0


def _detail(img: np.ndarray) -> float:
    return float(np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean())


def _photo(arr: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The most detailed (mean absolute pixel difference) of CANDIDATES random crops, so that every
    image has structure for the Gaussians to resolve (flat sky or blur would test nothing)."""
    h, w = arr.shape[:2]
    ks = [k for k in (1, 2, 3) if size * k <= min(h, w)]
    best, best_d = None, -1.0
    for _ in range(CANDIDATES):
        k = int(rng.choice(ks))
        side = size * k
        y0 = int(rng.integers(0, h - side + 1))
        x0 = int(rng.integers(0, w - side + 1))
        crop = arr[y0:y0 + side, x0:x0 + side].astype(np.float64) / 255.0
        cand = crop.reshape(size, k, size, k, 3).mean(axis=(1, 3))
        d = _detail(cand)
        if d > best_d:
            best, best_d = cand, d
    img = best
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = img.transpose(1, 0, 2)
    return img


def _segment_dist(px, py, a, b):
    d = b - a
    L2 = float(d @ d) + 1e-12
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / L2, 0.0, 1.0)
    return np.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def _strokes(size: int, rng: np.random.Generator) -> np.ndarray:
    ss = 4
    n = size * ss
    c = (np.arange(n) + 0.5) / ss  # pixel coordinates of the sub-samples
    py, px = np.meshgrid(c, c, indexing="ij")
    c0, c1 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = ((px * np.cos(ang) + py * np.sin(ang)) / size + 1.5) / 3.0
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    # a patch of high-frequency stripes
    cx, cy, r = *rng.uniform(0.25 * size, 0.75 * size, 2), rng.uniform(0.12, 0.22) * size
    period, phi = rng.uniform(2.5, 4.0), rng.uniform(0, np.pi)
    inside = (np.abs(px - cx) < r) & (np.abs(py - cy) < r)
    stripe = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (px * np.cos(phi) + py * np.sin(phi)) / period))
    sc = rng.uniform(0, 1, 3)
    img = np.where((inside & (stripe > 0.5))[..., None], sc, img)
    # thin line segments
    for _ in range(int(rng.integers(8, 13))):
        a, b = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        width = rng.uniform(0.6, 1.8)
        m = _segment_dist(px, py, a, b) < width / 2
        img = np.where(m[..., None], rng.uniform(0, 1, 3), img)
    # small dots
    for _ in range(int(rng.integers(5, 9))):
        q, rad = rng.uniform(0, size, 2), rng.uniform(0.8, 2.5)
        m = np.hypot(px - q[0], py - q[1]) < rad
        img = np.where(m[..., None], rng.uniform(0, 1, 3), img)
    return img.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))


def build_targets(spec: dict, seed: int, salt: int = 0, data_dirs=(HERE / "data", HERE)) -> np.ndarray:
    """-> float64 array (n_images, size, size, 3) in [0, 1]."""
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), int(salt)])
    size, n = int(spec["size"]), int(spec["n_images"])
    src = spec["source"]
    if src == "strokes":
        imgs = [_strokes(size, rng) for _ in range(n)]
    else:
        path = next((Path(d) / f"{src}.npy" for d in data_dirs if (Path(d) / f"{src}.npy").is_file()), None)
        if path is None:
            raise FileNotFoundError(f"image source {src!r} not found in {[str(d) for d in data_dirs]}")
        arr = np.load(path, allow_pickle=False)
        imgs = [_photo(arr, size, rng) for _ in range(n)]
    return np.clip(np.stack(imgs), 0.0, 1.0)
