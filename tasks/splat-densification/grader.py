"""Trusted grader for splat-densification (runs outside the sandbox).

Rebuilds the setting's target images from the pristine task files and the seed (never from the
run's artifacts), checks the run record the harness parent wrote (status, no rule broken by the
policy, the largest number of Gaussians ever held <= the cap) and the final Gaussians of every image
(count <= cap, finite), re-renders each image itself (float64, the harness's renderer formula,
clipped to [0, 1]) and scores it:
  psnr   10 log10(1 / MSE), averaged over the setting's images (dB)
  ssim   structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) with the paper's constants:
         11-tap Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 1, population covariances,
         mean over the valid region and the three channels (as skimage's structural_similarity with
         gaussian_weights=True, use_sample_covariance=False), averaged over the images.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

SETTINGS = {
    "china-40px-cap80": ("setting", "china-40px-cap80"),
    "flower-48px-cap112": ("setting", "flower-48px-cap112"),
    "strokes-40px-cap96": ("setting", "strokes-40px-cap96"),
    "hopper-44px-cap100": ("spec", "hidden_setting.json"),
}
AA = 0.3


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def exact_targets(setting: str, seed: int, task_dir: Path, salted: bool = False):
    """-> (targets (n, h, w, 3), spec, name) rebuilt from the pristine task files."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    images = _load(task_dir / "repo" / "images.py", "_splat_grader_images")
    if kind == "setting":
        spec = dict(images.SETTINGS[name])
    else:
        spec = json.loads((task_dir / "hidden" / name).read_text())
    salt = images.load_salt(task_dir / "hidden" / "salt.json") if salted else 0
    tg = images.build_targets(
        spec, seed, salt, data_dirs=(task_dir / "repo" / "data", task_dir / "hidden")
    )
    return tg, spec, name


def render(X: np.ndarray, h: int, w: int) -> np.ndarray:
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    px, py = xs.reshape(-1, 1), ys.reshape(-1, 1)
    s1 = np.sqrt(np.exp(2 * X[:, 2]) + AA)
    s2 = np.sqrt(np.exp(2 * X[:, 3]) + AA)
    ct, st = np.cos(X[:, 4]), np.sin(X[:, 4])
    dx, dy = px - X[:, 0], py - X[:, 1]
    u1 = ct * dx + st * dy
    u2 = -st * dx + ct * dy
    G = np.exp(-0.5 * ((u1 / s1) ** 2 + (u2 / s2) ** 2))
    a = 1.0 / (1.0 + np.exp(-X[:, 5]))
    return np.clip((G * a) @ X[:, 6:9], 0.0, 1.0).reshape(h, w, 3)


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = float(np.mean((x - y) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def ssim(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = 0.01**2, 0.03**2
    pad = 5
    vals = []
    for ch in range(x.shape[2]):
        a, b = x[..., ch], y[..., ch]
        f = lambda z: gaussian_filter(z, sigma=1.5, truncate=3.5, mode="reflect")  # noqa: E731
        ma, mb = f(a), f(b)
        va = f(a * a) - ma * ma
        vb = f(b * b) - mb * mb
        cov = f(a * b) - ma * mb
        s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        vals.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(vals))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    targets, spec, name = exact_targets(
        setting, seed, task_dir, salted=bool(rec.get("salted", False))
    )
    cap = int(spec["cap"])
    if rec.get("setting") != name or int(rec.get("seed", -1)) != int(seed):
        raise ValueError(
            f"run.json is for setting {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the run failed: {rec.get('error')}")
    if int(rec.get("cap", -1)) != cap:
        raise ValueError(f"run.json records cap {rec.get('cap')}, the setting's cap is {cap}")
    if int(rec.get("max_n", cap + 1)) > cap or any(
        int(r.get("max_n", cap + 1)) > cap or max(r.get("counts", [cap + 1])) > cap
        for r in rec.get("images", [])
    ):
        raise ValueError(f"Gaussian cap exceeded: the run held more than {cap} Gaussians")
    path = out_dir / "params.npz"
    if not path.is_file():
        raise ValueError("no params.npz in the output directory")
    with np.load(path, allow_pickle=False) as z:
        params = {k: z[k] for k in z.files}
    n = targets.shape[0]
    if sorted(params) != sorted(f"image{i}" for i in range(n)) or len(rec.get("images", [])) != n:
        raise ValueError(f"params.npz must hold image0..image{n - 1}, got {sorted(params)}")
    ps, ss = [], []
    for i in range(n):
        X = np.asarray(params[f"image{i}"], dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != 9:
            raise ValueError(f"image{i}: Gaussians must have shape (N, 9), got {X.shape}")
        if X.shape[0] > cap:
            raise ValueError(
                f"Gaussian cap exceeded: image {i} ends with {X.shape[0]} Gaussians, "
                f"the cap is {cap}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError(f"image{i}: non-finite Gaussian parameters")
        img = render(X, targets.shape[1], targets.shape[2])
        ps.append(psnr(img, targets[i]))
        ss.append(ssim(img, targets[i]))
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss))}
