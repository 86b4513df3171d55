"""The trained noise-prediction network eps_theta(x_t, t | obs), evaluated in numpy (fixed file).

It is loaded and evaluated only by the harness's parent process; the sampler reaches it through
the counted `denoise` callable. Noise schedule (continuous-time VP, cosine, Nichol & Dhariwal 2021):
    x_t = alpha(t) * x0 + sigma(t) * eps,  alpha(t) = cos(pi t / 2),  sigma(t) = sin(pi t / 2),
for t in [T_MIN, T_MAX]; x0 is a normalised action chunk (entries in [-1, 1]) flattened to H * A.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

T_MIN = 1e-3
T_MAX = 0.99
N_FREQ = 8
WEIGHTS = Path(__file__).resolve().parent / "weights"


def alpha(t):
    return np.cos(0.5 * np.pi * np.asarray(t, dtype=np.float64))


def sigma(t):
    return np.sin(0.5 * np.pi * np.asarray(t, dtype=np.float64))


def time_features(t, n):
    """Sinusoidal features of t (scalar) repeated for n rows: (n, 2 * N_FREQ)."""
    freqs = np.pi * 2.0 ** np.arange(N_FREQ, dtype=np.float64)
    f = np.concatenate([np.sin(freqs * t), np.cos(freqs * t)])
    return np.broadcast_to(f, (n, 2 * N_FREQ))


def silu(z):
    return z / (1.0 + np.exp(-z))


class Denoiser:
    """eps_theta: an MLP on [x_t, normalised obs, time features], SiLU activations."""

    def __init__(self, env_name: str, path: Path | None = None):
        path = Path(path) if path else WEIGHTS / f"{env_name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"denoiser weights {path} missing: run tools/train_denoiser.py")
        z = np.load(path, allow_pickle=False)
        n_layers = int(z["n_layers"])
        self.W = [z[f"W{i}"].astype(np.float64) for i in range(n_layers)]
        self.b = [z[f"b{i}"].astype(np.float64) for i in range(n_layers)]
        self.obs_mean = z["obs_mean"].astype(np.float64)
        self.obs_std = z["obs_std"].astype(np.float64)
        self.dim = self.W[-1].shape[1]

    def eps(self, x, t, obs):
        h = np.concatenate([x, (obs - self.obs_mean) / self.obs_std, time_features(t, x.shape[0])], 1)
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W + b
            if i < len(self.W) - 1:
                h = silu(h)
        return h
