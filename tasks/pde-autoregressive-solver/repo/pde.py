"""Settings and data of this task (fixed): numpy solvers of three 1-D PDEs after PDEBench's
recipes (Takamoto et al., NeurIPS 2022 Datasets & Benchmarks), and the trajectories of a run,
drawn from the setting, the seed and an instance key. Imported by the harness parent and by the
grader (which rebuilds the test trajectories itself); never by the model's processes.

Every trajectory is saved at N_T snapshots on N_X cells of [0, 1]:
  advection      u_t + beta u_x = 0, periodic; exact (a Fourier shift of the initial condition)
  burgers        u_t + (u^2/2)_x = (nu/pi) u_xx, periodic; finite volumes on a finer grid
                 (MUSCL-minmod, Rusanov flux, SSP-RK2), averaged down to N_X cells
  diff-sorption  u_t = D / R(u) u_xx, R(u) = 1 + (1-phi)/phi rho_s k n_f u^(n_f-1);
                 u(0) = 1, u(1) = D u_x(1) (PDEBench's Cauchy condition); explicit Euler
Initial conditions: advection and burgers, PDEBench's sum of two random sine waves (random
integer wavenumbers, amplitudes and phases; absolute value or a window in 10 % of the draws
each); diff-sorption, independent U(0, 0.2) per cell, as PDEBench.
"""

from __future__ import annotations

import hashlib

import numpy as np

PUBLIC_KEY = "public-pde-instances-v0"
N_X = 64  # the model's grid (PDEBench's 1024-cell data, 16x coarser: CPU-scale)
N_T = 21  # snapshots per trajectory, the first T_IN given, the rest rolled out
T_IN = 2

SETTINGS = {
    "advection-beta0.4": dict(pde="advection", beta=0.4, t_end=2.0, n_train=64, n_test=32),
    "burgers-nu0.01": dict(pde="burgers", nu=0.01, t_end=2.0, fine=2, n_train=64, n_test=32),
    "diffsorption": dict(pde="diffsorption", t_end=500.0, n_train=64, n_test=32),
}
KEYS = {"advection": ("beta",), "burgers": ("nu", "fine"), "diffsorption": ()}


def check_spec(spec: dict) -> dict:
    """A setting's spec, checked (a hidden one arrives as JSON)."""
    pde = spec.get("pde")
    if pde not in KEYS:
        raise ValueError(f"unknown pde {pde!r}; expected one of {sorted(KEYS)}")
    need = ("t_end", "n_train", "n_test", *KEYS[pde])
    missing = [k for k in need if k not in spec]
    if missing:
        raise ValueError(f"the {pde} spec lacks {missing}")
    return dict(spec)


def rng_for(key: str, name: str, seed: int, what: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{what}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def sine_ic(rng, n: int, nx: int) -> np.ndarray:
    """PDEBench's initial condition: two sine waves, with abs / window in 10 % of draws each."""
    x = (np.arange(nx) + 0.5) / nx
    k = rng.integers(1, 5, size=(n, 2, 1)) * 2 * np.pi
    amp = rng.uniform(0, 1, size=(n, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 2, 1))
    u = (amp * np.sin(k * x + phase)).sum(1)
    flip = rng.uniform(size=n) < 0.1
    u[flip] = np.abs(u[flip])
    win = rng.uniform(size=n) < 0.1
    lo, hi = rng.uniform(0.1, 0.45, size=(n, 1)), rng.uniform(0.55, 0.9, size=(n, 1))
    mask = (x > lo) & (x < hi)
    u[win] = u[win] * mask[win]
    return u


def advection(u0: np.ndarray, beta: float, times: np.ndarray) -> np.ndarray:
    nx = u0.shape[-1]
    k = np.fft.rfftfreq(nx, d=1.0 / nx) * 2 * np.pi
    U0 = np.fft.rfft(u0, axis=-1)
    out = [np.fft.irfft(U0 * np.exp(-1j * k * beta * t), n=nx, axis=-1) for t in times]
    return np.stack(out, axis=1)


def _minmod(a, b):
    return np.where(a * b > 0, np.sign(a) * np.minimum(np.abs(a), np.abs(b)), 0.0)


def _burgers_rhs(u, dx, visc):
    du = _minmod(u - np.roll(u, 1, -1), np.roll(u, -1, -1) - u)
    left = u + 0.5 * du  # state left of the face i+1/2
    right = np.roll(u - 0.5 * du, -1, -1)
    speed = np.maximum(np.abs(left), np.abs(right))
    flux = 0.25 * (left**2 + right**2) - 0.5 * speed * (right - left)
    diff = visc * (np.roll(u, -1, -1) - 2 * u + np.roll(u, 1, -1)) / dx**2
    return -(flux - np.roll(flux, 1, -1)) / dx + diff


def burgers(u0: np.ndarray, nu: float, times: np.ndarray, fine: int) -> np.ndarray:
    n, nx = u0.shape
    m = nx * fine
    u = np.repeat(u0, fine, axis=-1)
    dx, visc = 1.0 / m, nu / np.pi
    out, t = [u0], 0.0
    for t_next in times[1:]:
        while t < t_next - 1e-12:
            vmax = max(float(np.abs(u).max()), 1e-6)
            dt = min(0.45 * dx / vmax, 0.45 * dx**2 / max(visc, 1e-12), t_next - t)
            u1 = u + dt * _burgers_rhs(u, dx, visc)
            u = 0.5 * (u + u1 + dt * _burgers_rhs(u1, dx, visc))
            t += dt
        out.append(u.reshape(n, nx, fine).mean(-1))
    return np.stack(out, axis=1)


DS = dict(D=5e-4, phi=0.29, rho_s=2880.0, k=3.5e-4, n_f=0.874)


def diffsorption(u0: np.ndarray, times: np.ndarray) -> np.ndarray:
    D, phi, rho, kf, nf = (DS[k] for k in ("D", "phi", "rho_s", "k", "n_f"))
    nx = u0.shape[-1]
    dx = 1.0 / nx
    u, t, out = u0.copy(), 0.0, [u0]
    # R(u) >= 1 + (1-phi)/phi rho_s k n_f on [0, 1]: the largest stable explicit step
    r_min = 1 + (1 - phi) / phi * rho * kf * nf
    dt_max = 0.45 * dx**2 * r_min / D
    for t_next in times[1:]:
        while t < t_next - 1e-9:
            dt = min(dt_max, t_next - t)
            ghost_l = 2.0 - u[:, :1]  # u = 1 at x = 0 (the face)
            ghost_r = u[:, -1:] * (1 - dx / (2 * D)) / (1 + dx / (2 * D))  # u = D u_x at x = 1
            ue = np.concatenate([ghost_l, u, ghost_r], axis=1)
            lap = (ue[:, 2:] - 2 * u + ue[:, :-2]) / dx**2
            retard = 1 + (1 - phi) / phi * rho * kf * nf * np.maximum(u, 1e-6) ** (nf - 1)
            u = u + dt * D / retard * lap
            t += dt
        out.append(u.copy())
    return np.stack(out, axis=1)


def trajectories(spec: dict, u0: np.ndarray) -> np.ndarray:
    times = np.linspace(0.0, float(spec["t_end"]), N_T)
    if spec["pde"] == "advection":
        return advection(u0, float(spec["beta"]), times)
    if spec["pde"] == "burgers":
        return burgers(u0, float(spec["nu"]), times, int(spec["fine"]))
    return diffsorption(u0, times)


def initial(spec: dict, rng, n: int) -> np.ndarray:
    if spec["pde"] == "diffsorption":
        return rng.uniform(0.0, 0.2, size=(n, N_X))
    return sine_ic(rng, n, N_X)


def instance(name: str, spec: dict, seed: int, key: str, part: str) -> np.ndarray:
    """The run's training or test trajectories, (n, N_T, N_X) float32."""
    n = int(spec["n_train" if part == "train" else "n_test"])
    u0 = initial(spec, rng_for(key, name, seed, part), n)
    return trajectories(spec, u0).astype(np.float32)


def rollout_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over trajectories of ||pred - true|| / ||true|| over the rolled-out snapshots and
    cells (PDEBench's nRMSE)."""
    p = pred.astype(np.float64).reshape(len(pred), -1)
    y = true.astype(np.float64).reshape(len(true), -1)
    return float(np.mean(np.linalg.norm(p - y, axis=1) / np.maximum(np.linalg.norm(y, axis=1), 1e-12)))
