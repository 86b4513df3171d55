"""Trusted grader for diffusion-prior-inverse-solver (runs outside the sandbox).

Rebuilds the problem (prior, operator, measurements) from the pristine task files and the seed,
never from the run's artifacts, checks the run record written by the harness parent (NFE used <=
the budget, no refused call, the right problem) and the samples (shape, finite), and scores them
against the EXACT posterior. For a Gaussian-mixture prior sum_k w_k N(mu_k, S_k) and
y = A x + s e, the posterior is the Gaussian mixture with components
    C_k = A S_k A^T + s^2 I,  G_k = S_k A^T C_k^-1,
    m_k = mu_k + G_k (y - A mu_k),  P_k = S_k - G_k A S_k,  pi_k ~ w_k N(y; A mu_k, C_k).
Per measurement j (n_per samples each), then averaged over the measurements:
  sw2       relative squared sliced 2-Wasserstein distance: the mean over 32 fixed random unit
            directions of the 1-D W2^2 between the sorted projected samples and the exact quantiles
            of the projected posterior (a 1-D Gaussian mixture), divided by the posterior's mean
            variance per direction tr(Cov_post) / dim.
  mean_err  squared error of the sample mean against the exact posterior mean, divided by
            tr(Cov_post) (the MMSE estimate's error in units of the posterior spread).
  consistency  |log(R / R*)| with R the samples' mean squared residual ||A x - y||^2 and
            R* = E_post ||A x - y||^2 = sum_k pi_k (||A m_k - y||^2 + tr(A P_k A^T)) its exact
            value under the posterior: over-fitting the noise (R << R*) and ignoring the
            measurement (R >> R*) are both penalised.
All three are 0 for the exact posterior up to finite-sample noise (README.md gives the floor).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from scipy.special import ndtr

SETTINGS = {
    "inpaint-32d-s0.05-nfe40": ("problem", "inpaint-32d"),
    "blur-48d-s0.2-nfe60": ("problem", "blur-48d"),
    "cs-64d-m8-s0.3-nfe30": ("problem", "cs-64d"),
    "superres4x-40d-s0.1-nfe50": ("spec", "extra_problem.json"),
}
N_DIRECTIONS = 32
GRID = 4001


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def exact_problem(setting: str, seed: int, task_dir: Path, salted: bool = False):
    """-> (problem dict, problem name) rebuilt from the pristine task files. `salted`: the run had
    the final evaluation's salt (hidden/salt.json copied into the pristine repo)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    import sys

    repo = str(task_dir / "repo")
    sys.path.insert(0, repo)  # problems.make_prior imports gmm
    try:
        problems = _load(task_dir / "repo" / "problems.py", "_dpis_grader_problems")
        if kind == "problem":
            spec = dict(problems.PROBLEMS[name])
        else:
            spec = json.loads((task_dir / "hidden" / name).read_text())
        salt = problems.load_salt(task_dir / "hidden" / "salt.json") if salted else 0
        prob = problems.build(spec, seed, salt)
    finally:
        sys.path.remove(repo)
    return prob, name


def posterior(prior, A, s, y):
    """Exact posterior mixture for one measurement y: (pi (K,), means (K, d), covs (K, d, d))."""
    K, m = prior.K, A.shape[0]
    logw, means, covs = np.empty(K), [], []
    for k in range(K):
        S = prior.component_cov(k)
        C = A @ S @ A.T + s * s * np.eye(m)
        G = np.linalg.solve(C, A @ S).T
        r = y - A @ prior.mu[k]
        means.append(prior.mu[k] + G @ r)
        P = S - G @ A @ S
        covs.append(0.5 * (P + P.T))
        _, logdet = np.linalg.slogdet(C)
        logw[k] = np.log(prior.w[k]) - 0.5 * (logdet + r @ np.linalg.solve(C, r))
    pi = np.exp(logw - logw.max())
    return pi / pi.sum(), np.array(means), np.array(covs)


def hash_label(label: str) -> int:
    """A stable (not salted) integer from the label, for the fixed projection directions."""
    h = 1469598103934665603
    for ch in label.encode():
        h = ((h ^ ch) * 1099511628211) % (1 << 63)
    return h


def sliced_w2(x, pi, means, covs, theta) -> float:
    n = x.shape[0]
    u = (np.arange(n) + 0.5) / n
    proj = np.sort(x @ theta.T, axis=0)  # (n, L)
    pm = means @ theta.T  # (K, L)
    ps = np.sqrt(np.clip(np.einsum("li,kij,lj->kl", theta, covs, theta), 1e-300, None))
    total = 0.0
    for j in range(theta.shape[0]):
        lo = float((pm[:, j] - 9.0 * ps[:, j]).min())
        hi = float((pm[:, j] + 9.0 * ps[:, j]).max())
        grid = np.linspace(lo, hi, GRID)
        cdf = ndtr((grid[:, None] - pm[:, j]) / ps[:, j]) @ pi
        q = np.interp(u, cdf, grid)
        total += float(np.mean((proj[:, j] - q) ** 2))
    return total / theta.shape[0]


def metrics_for(x_all, prob, setting):
    prior, A, s = prob["prior"], prob["A"], prob["noise"]
    n_per, d = prob["n_per"], prior.d
    rng = np.random.default_rng(hash_label(setting))
    theta = rng.standard_normal((N_DIRECTIONS, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    sw, me, co = [], [], []
    for j in range(prob["n_meas"]):
        y = prob["y_meas"][j]
        x = x_all[j * n_per : (j + 1) * n_per]
        pi, means, covs = posterior(prior, A, s, y)
        m_post = pi @ means
        dm = means - m_post
        tr_cov = float(np.einsum("k,kii->", pi, covs) + np.einsum("k,ki,ki->", pi, dm, dm))
        sw.append(sliced_w2(x, pi, means, covs, theta) / (tr_cov / d))
        me.append(float(((x.mean(axis=0) - m_post) ** 2).sum()) / tr_cov)
        res = means @ A.T - y
        r_star = float(pi @ ((res**2).sum(axis=1) + np.einsum("ij,kjl,il->k", A, covs, A)))
        r = float(((x @ A.T - y) ** 2).sum(axis=1).mean())
        co.append(abs(np.log(max(r, 1e-300) / r_star)))
    return {
        "sw2": float(np.mean(sw)),
        "mean_err": float(np.mean(me)),
        "consistency": float(np.mean(co)),
    }


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    prob, name = exact_problem(setting, seed, task_dir, salted=bool(rec.get("salted", False)))
    nfe = prob["nfe"]
    if rec.get("problem") != name or int(rec.get("seed", -1)) != int(seed):
        raise ValueError(
            f"run.json is for problem {rec.get('problem')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if int(rec.get("refused_calls", 0)) > 0:
        raise ValueError(
            f"NFE budget exceeded: the solver attempted model calls beyond the budget "
            f"of {nfe} NFE ({rec['refused_calls']} refused)"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the solver run failed: {rec.get('error')}")
    used = int(rec.get("nfe_used", -1))
    if not 0 <= used <= nfe or int(rec.get("nfe_budget", -1)) != nfe:
        raise ValueError(f"NFE budget violated: used {used}, budget {nfe}")
    if len(rec.get("calls", [])) != used:
        raise ValueError("inconsistent run record (calls vs nfe_used)")
    path = out_dir / "samples.npy"
    if not path.is_file():
        raise ValueError("no samples.npy in the output directory")
    x = np.load(path, allow_pickle=False)
    n = prob["n_meas"] * prob["n_per"]
    if x.dtype != np.float64 or x.shape != (n, prob["prior"].d):
        raise ValueError(
            f"samples must be float64 of shape {(n, prob['prior'].d)}, got {x.dtype} {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf")
    with np.errstate(over="ignore", invalid="ignore"):
        out = metrics_for(x, prob, setting)
    if not all(np.isfinite(v) for v in out.values()):
        raise ValueError("metric not finite (samples of astronomically large magnitude)")
    return out
