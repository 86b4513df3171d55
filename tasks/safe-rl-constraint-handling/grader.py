"""Trusted grader: reads run.json, written by the harness's parent process after the learner's
process had exited, re-checks the fixed budget and returns the metrics.

Metric of a setting (see README "Metrics"): with R = mean return and C = mean cost of the
final policy over the evaluation episodes and d the cost limit,
    safe_return = R                    if C <= d   (otherwise the return counts less the more
                = R * (d / C) ** 2     if C > d    the limit is broken)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# label -> (name in run.json, cost_limit, n_envs, horizon, updates, eval_episodes):
# must match repo/settings.py and hidden/*.json
SETTINGS = {
    "point-goal": ("point-goal", 5.0, 16, 200, 40, 64),
    "car-goal": ("car-goal", 5.0, 16, 200, 40, 64),
    "point-goal-dense": ("point-goal-dense", 5.0, 16, 200, 40, 64),
    "car-goal-cluster": ("car-goal-cluster", 5.0, 16, 200, 40, 64),
}


def safe_return(ret: float, cost: float, limit: float) -> float:
    if cost <= limit:
        return float(ret)
    return float(ret) * (limit / cost) ** 2


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}")
    name, limit, n, horizon, updates, n_eval = SETTINGS[setting]
    p = Path(out_dir) / "run.json"
    if not p.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(p.read_text())
    if rec.get("setting") != name or int(rec.get("seed", -1)) != seed:
        raise ValueError(
            f"run.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if rec.get("violation"):
        raise ValueError("sandbox violation: " + str(rec["violation"]))
    if int(rec.get("refused", 0)) > 0:
        raise ValueError(
            "environment step budget exceeded: the learner asked for more than "
            f"{updates} rollouts of {horizon} steps x {n} envs ({rec['refused']} refused requests)"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the run failed: {rec.get('error')}")
    budget = updates * horizon * n
    if (
        int(rec.get("env_steps", -1)) != budget
        or int(rec.get("resets", -1)) != updates
        or int(rec.get("n_envs", -1)) != n
        or int(rec.get("horizon", -1)) != horizon
        or float(rec.get("cost_limit", -1)) != limit
    ):
        raise ValueError(f"run.json does not match the setting's fixed budget ({budget} env steps)")
    R = np.asarray(rec.get("eval_returns", []), dtype=np.float64)
    C = np.asarray(rec.get("eval_costs", []), dtype=np.float64)
    if (
        R.shape != (n_eval,)
        or C.shape != (n_eval,)
        or not (np.all(np.isfinite(R)) and np.all(np.isfinite(C)))
    ):
        raise ValueError(f"run.json: expected {n_eval} finite evaluation returns and costs")
    ret, cost = float(R.mean()), float(C.mean())
    return {"safe_return": safe_return(ret, cost, limit), "eval_return": ret, "eval_cost": cost}
