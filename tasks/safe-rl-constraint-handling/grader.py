"""Trusted grader: reads run.json, written by the harness's parent process (which runs PPO, the
environments and the evaluation) after the constraint handler's process had exited, re-checks
the fixed budget and the bounds of the evaluation episodes and returns the metrics.

Metric of a setting (see README "Metrics"): with R = mean return and C = mean cost of the
final policy over the evaluation episodes and d the cost limit,
    safe_return = R                    if C <= d   (otherwise the return counts less the more
                = R * (d / C) ** 2     if C > d    the limit is broken)
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np


def setting_config(setting: str, task_dir: Path) -> dict:
    """The setting's fixed budget, read from the pristine task: a hidden layout's own file,
    else the visible table in repo/settings.py (run.json names the setting the same way)."""
    hidden = Path(task_dir) / "hidden" / f"{setting}.json"
    if hidden.is_file():
        return json.loads(hidden.read_text())
    visible = runpy.run_path(str(Path(task_dir) / "repo" / "settings.py"))["SETTINGS"]
    if setting not in visible:
        raise ValueError(f"unknown setting {setting!r}")
    return visible[setting]


def safe_return(ret: float, cost: float, limit: float) -> float:
    if cost <= limit:
        return float(ret)
    return float(ret) * (limit / cost) ** 2


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    cfg = setting_config(setting, task_dir)
    name, limit = setting, float(cfg["cost_limit"])
    n, horizon, updates = int(cfg["n_envs"]), int(cfg["horizon"]), int(cfg["updates"])
    n_eval = int(cfg["eval_episodes"])
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
            "environment step budget exceeded: PPO asked for more than "
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
    # an episode costs 0 or 1 per step; a step's reward is the distance gained towards the goal
    # (at most DT x speed 1.42 = 0.142) plus 1 when the goal is reached
    if C.min() < 0 or C.max() > horizon or np.abs(R).max() > 1.15 * horizon:
        raise ValueError(
            f"run.json: impossible evaluation episodes (costs must lie in [0, {horizon}], "
            f"returns in [-{1.15 * horizon:g}, {1.15 * horizon:g}])"
        )
    ret, cost = float(R.mean()), float(C.mean())
    return {"safe_return": safe_return(ret, cost, limit), "eval_return": ret, "eval_cost": cost}
