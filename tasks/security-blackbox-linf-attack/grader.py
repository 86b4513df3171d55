"""Trusted grader: reads the artifacts the harness's parent process wrote after the attack's
process had exited, re-checks every constraint and returns the metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TOL = 1e-6  # the harness's slack on the eps-ball and [0, 1] checks (float32 rounding)

# label -> (name in run.json, eps, budget, n): must match repo/settings.py and hidden/*.json
SETTINGS = {
    "mlp-digits": ("mlp-digits", 0.15, 50, 100),
    "cnn-fmnist": ("cnn-fmnist", 0.10, 300, 100),
    "mlp-fmnist": ("mlp-fmnist", 0.08, 500, 100),
    "lenet-fmnist": ("lenet-fmnist", 0.10, 400, 100),
}


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}")
    name, eps, budget, n = SETTINGS[setting]
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    if rec.get("setting") != name or int(rec.get("seed", -1)) != seed:
        raise ValueError(
            f"run.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if rec.get("violation"):
        raise ValueError("black-box violation: " + str(rec["violation"]))
    if int(rec.get("over_budget_attempts", 0)) > 0:
        raise ValueError(
            f"query budget exceeded: the attack asked for more than {budget} queries for a "
            f"sample ({rec['over_budget_attempts']} over-budget batch(es) refused)"
        )
    if int(rec.get("refused_queries", 0)) > 0:
        raise ValueError(
            f"{rec['refused_queries']} invalid queries (outside the eps-ball / [0, 1] or a "
            "bad sample index) reached the harness"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the attack run failed: {rec.get('error')}")
    if (
        float(rec.get("eps", -1)) != eps
        or int(rec.get("budget", -1)) != budget
        or int(rec.get("n", -1)) != n
    ):
        raise ValueError("run.json does not match the setting's eps / budget / n")
    queries = np.asarray(rec["queries"], dtype=np.int64)
    success = np.asarray(rec["success"], dtype=bool)
    if queries.shape != (n,) or success.shape != (n,):
        raise ValueError("run.json: per-sample queries/success of the wrong length")
    if queries.min() < 0 or queries.max() > budget:
        raise ValueError(
            f"query budget exceeded: a sample used {int(queries.max())} > {budget} queries"
        )
    for f in ("x_clean.npy", "x_adv.npy"):
        if not (out_dir / f).is_file():
            raise ValueError(f"no {f} in the output directory")
    x0 = np.load(out_dir / "x_clean.npy", allow_pickle=False)
    xa = np.load(out_dir / "x_adv.npy", allow_pickle=False)
    if x0.shape != xa.shape or x0.shape[0] != n:
        raise ValueError(f"x_adv has shape {xa.shape}, expected {x0.shape}")
    if not np.all(np.isfinite(xa)):
        raise ValueError("x_adv contains NaN or inf")
    linf = np.abs(xa.reshape(n, -1).astype(np.float64) - x0.reshape(n, -1)).max(axis=1)
    if linf.max() > eps + TOL:
        raise ValueError(
            f"x_adv outside the eps-ball: max ||x_adv - x||_inf = {linf.max():.6f} > eps = {eps}"
        )
    if xa.min() < -TOL or xa.max() > 1 + TOL:
        raise ValueError("x_adv outside [0, 1]")
    # a failed sample is charged the whole budget (see README: "Metrics")
    cost = np.where(success, queries, budget)
    return {"success_rate": float(success.mean()), "avg_queries": float(cost.mean())}
