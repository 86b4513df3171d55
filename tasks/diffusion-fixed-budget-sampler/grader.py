"""Trusted grader for diffusion-fixed-budget-sampler (runs outside the sandbox).

Checks the run record written by the harness parent (NFE used <= the setting's budget, no refused
call, the right problem), the samples (shape, finite), and scores them against the exact data
distribution, which it rebuilds from the pristine task files (never from the run's artifacts):
  sw2  squared sliced 2-Wasserstein distance between the samples and the exact mixture: the mean
       over 128 fixed random directions of the 1-D W2^2 between the projected samples and the
       exact projected mixture (its quantiles from the exact 1-D mixture CDF).
  intra_fd  class-conditional Frechet distance ("intra-FID", Miyato & Koyama 2018) with the mixture
       components as the classes: each sample is labelled with its most probable component under
       the exact mixture (the Bayes classifier), and intra_fd = sum_k w_k FD(samples labelled k,
       N(mu_k, Sigma_k)). It measures the fidelity inside each mode (spread, shrinkage, location,
       samples stranded between modes), which sw2 sees only weakly.
Both are 0 for the exact distribution; with n finite samples an exact sampler scores O(1/n)
(the noise floor, reported in README.md). The plain FD of the global moments is not scored: a
sampler can match the mixture's mean and covariance with one denoiser call and a Gaussian.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from scipy.special import ndtr

# label -> where the exact problem comes from; budgets come from the same pristine spec
SETTINGS = {
    "gmm2d-8modes-nfe5": ("problem", "gmm2d-8modes"),
    "gmm16d-6modes-nfe8": ("problem", "gmm16d-6modes"),
    "gmm64d-4modes-nfe10": ("problem", "gmm64d-4modes"),
    "gmm32d-10modes-nfe6": ("spec", "extra_problem.json"),
}
N_DIRECTIONS = 128
GRID = 20001


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def exact_problem(setting: str, task_dir: Path):
    """-> (GaussianMixture, nfe, n_samples, problem name) from the pristine task files."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    gmm = _load(task_dir / "repo" / "gmm.py", "_dfbs_grader_gmm")
    if kind == "problem":
        problems = _load(task_dir / "repo" / "problems.py", "_dfbs_grader_problems")
        spec = problems.make_spec(**problems.PROBLEMS[name])
    else:
        spec = json.loads((task_dir / "hidden" / name).read_text())
    return gmm.GaussianMixture.from_spec(spec), int(spec["nfe"]), int(spec["n_samples"]), name


def frechet_distance(x: np.ndarray, m: np.ndarray, C: np.ndarray) -> float:
    mh = x.mean(axis=0)
    S = np.atleast_2d(np.cov(x, rowvar=False))
    ev, V = np.linalg.eigh(C)
    Ch = (V * np.sqrt(np.clip(ev, 0.0, None))) @ V.T
    M = Ch @ S @ Ch
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (M + M.T)), 0.0, None)).sum()
    return float(((mh - m) ** 2).sum() + np.trace(S) + np.trace(C) - 2.0 * tr_sqrt)


def component_labels(x: np.ndarray, mix) -> np.ndarray:
    """argmax_k of log w_k + log N(x; mu_k, Sigma_k): the exact mixture's Bayes classifier."""
    logp = np.empty((x.shape[0], mix.K))
    for k in range(mix.K):
        y = (x - mix.mu[k]) @ mix.U[k]
        log_norm = np.log(mix.w[k]) - 0.5 * np.log(mix.lam[k]).sum()
        logp[:, k] = log_norm - 0.5 * (y * y / mix.lam[k]).sum(axis=1)
    return logp.argmax(axis=1)


def intra_fd(x: np.ndarray, mix) -> float:
    labels = component_labels(x, mix)
    total = 0.0
    for k in range(mix.K):
        xk = x[labels == k]
        if xk.shape[0] < 2:
            # a (nearly) dropped mode: as costly as moving it onto the farthest other mode
            far = max(float(((mix.mu[j] - mix.mu[k]) ** 2).sum()) for j in range(mix.K))
            total += mix.w[k] * (float(mix.lam[k].sum()) + far)
            continue
        total += mix.w[k] * frechet_distance(xk, mix.mu[k], mix.component_cov(k))
    return float(total)


def sliced_w2(x: np.ndarray, mix, setting: str) -> float:
    rng = np.random.default_rng(hash_label(setting))
    theta = rng.standard_normal((N_DIRECTIONS, mix.d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    n = x.shape[0]
    u = (np.arange(n) + 0.5) / n
    proj = np.sort(x @ theta.T, axis=0)                            # (n, L)
    pm = mix.mu @ theta.T                                          # (K, L) projected means
    # projected std of component k on direction l: sqrt(sum_j lam_kj (u_kj . theta_l)^2)
    ps = np.sqrt(np.einsum("kd,kdl->kl", mix.lam, np.einsum("kij,li->kjl", mix.U, theta) ** 2))
    total = 0.0
    for j in range(N_DIRECTIONS):
        lo = float((pm[:, j] - 9.0 * ps[:, j]).min())
        hi = float((pm[:, j] + 9.0 * ps[:, j]).max())
        grid = np.linspace(lo, hi, GRID)
        cdf = ndtr((grid[:, None] - pm[:, j]) / ps[:, j]) @ mix.w
        q = np.interp(u, cdf, grid)                                # exact quantiles at u
        total += float(np.mean((proj[:, j] - q) ** 2))
    return total / N_DIRECTIONS


def hash_label(label: str) -> int:
    """A stable (not salted) integer from the label, for the fixed projection directions."""
    h = 1469598103934665603
    for ch in label.encode():
        h = ((h ^ ch) * 1099511628211) % (1 << 63)
    return h


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    mix, nfe, n, name = exact_problem(setting, task_dir)
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise RuntimeError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    if rec.get("problem") != name:
        raise RuntimeError(f"run.json is for problem {rec.get('problem')!r}, expected {name!r}")
    if rec.get("status") != "ok":
        raise RuntimeError(f"the sampler run failed: {rec.get('error')}")
    if int(rec.get("refused_calls", 0)) > 0:
        raise RuntimeError(f"NFE budget exceeded: the sampler attempted more than {nfe} denoiser "
                           f"calls ({rec['refused_calls']} refused)")
    used = int(rec.get("nfe_used", -1))
    if not 0 <= used <= nfe or int(rec.get("nfe_budget", -1)) != nfe:
        raise RuntimeError(f"NFE budget violated: used {used}, budget {nfe}")
    if len(rec.get("sigmas", [])) != used:
        raise RuntimeError("inconsistent run record (sigmas vs nfe_used)")
    path = out_dir / "samples.npy"
    if not path.is_file():
        raise RuntimeError("no samples.npy in the output directory")
    x = np.load(path, allow_pickle=False)
    if x.dtype != np.float64 or x.shape != (n, mix.d):
        raise RuntimeError(
            f"samples must be float64 of shape {(n, mix.d)}, got {x.dtype} {x.shape}")
    if not np.all(np.isfinite(x)):
        raise RuntimeError("samples contain NaN or inf")
    with np.errstate(over="ignore", invalid="ignore"):
        sw = sliced_w2(x, mix, setting)
        ifd = intra_fd(x, mix)
    if not (np.isfinite(sw) and np.isfinite(ifd)):
        raise RuntimeError("metric not finite (samples of astronomically large magnitude)")
    return {"sw2": max(sw, 0.0), "intra_fd": max(ifd, 0.0)}
