"""Trusted grader of optimization-online-bandit (runs outside the sandbox).

Reads arms.npy and result.json, written by the harness parent process (run.py) after the policy's
process exited, replays the setting's instances from the label, the seed and the instance key
(repo/bandits.py; the hidden settings' specs from hidden/) and recomputes the normalized regret
of the pulled arms itself; the harness's own number must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

VISIBLE = ("bernoulli-k10", "linear-d6-k10", "piecewise-k5")
HIDDEN = {
    "bernoulli-k20-lowrate": "bernoulli-k20-lowrate.json",
    "piecewise-k8-fast": "piecewise-k8-fast.json",
}


def _bandits(task_dir: pathlib.Path):
    # a private module name, so that nothing clashes with other tasks' graders
    name = "_online_bandit_grader_bandits"
    spec = importlib.util.spec_from_file_location(name, task_dir / "repo" / "bandits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    bandits = _bandits(task_dir)
    if setting in VISIBLE:
        name, spec = setting, bandits.SETTINGS[setting]
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
    else:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted((*VISIBLE, *HIDDEN))}")
    path = out_dir / "result.json"
    if not path.is_file():
        raise FileNotFoundError("no result.json: the run failed (see the log)")
    r = json.loads(path.read_text())
    if r.get("error"):  # the harness failed the run and says why
        raise ValueError(f"the run failed: {r['error']}")
    if (r.get("setting"), r.get("seed"), r.get("spec")) != (name, seed, spec):
        raise ValueError(
            f"result.json is for {r.get('setting')!r} seed {r.get('seed')}, "
            f"expected {name!r} seed {seed} with spec {spec}"
        )
    if r.get("instance") == "public":
        key = bandits.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    arms_path = out_dir / "arms.npy"
    if not arms_path.is_file():
        raise FileNotFoundError("no arms.npy: the harness wrote no record of the pulled arms")
    arms = np.load(arms_path, allow_pickle=False)
    if not np.issubdtype(arms.dtype, np.integer):
        raise ValueError(f"arms.npy must hold integers, got {arms.dtype}")
    score = bandits.regret_of(name, spec, seed, key, arms)
    reported = float(r.get("normalized_regret", math.nan))
    if not math.isclose(score["normalized_regret"], reported, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"normalized regret of the pulled arms is {score['normalized_regret']!r} "
            f"but the harness recorded {reported!r}"
        )
    return {"normalized_regret": score["normalized_regret"]}
