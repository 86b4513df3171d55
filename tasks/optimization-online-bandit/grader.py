"""Trusted grader of optimization-online-bandit (runs outside the sandbox).

Reads arms.npy and result.json, written by the harness parent process (run.py) after the policy's
process exited, replays the setting's instances from the label, the seed and the instance key
(repo/bandits.py; the hidden settings' specs from hidden/) and recomputes the normalized regret
of the pulled arms itself; the harness's own number must agree with it.
"""

from __future__ import annotations

import pathlib

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {
    "bernoulli-k20-lowrate": "bernoulli-k20-lowrate.json",
    "piecewise-k8-fast": "piecewise-k8-fast.json",
}


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    bandits = private_module(task_dir / "repo" / "bandits.py", "_online_bandit_grader_bandits")
    run = read_kit_result(setting, seed, out_dir, task_dir, bandits, HIDDEN)
    arms = run.array("arms.npy", "record of the pulled arms")
    if not np.issubdtype(arms.dtype, np.integer):
        raise ValueError(f"arms.npy must hold integers, got {arms.dtype}")
    regret = bandits.regret_of(run.name, run.spec, seed, run.key, arms)["normalized_regret"]
    run.check_reported("normalized_regret", regret)
    return {"normalized_regret": regret}
