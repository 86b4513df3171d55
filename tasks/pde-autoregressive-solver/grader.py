"""Trusted grader of pde-autoregressive-solver (runs outside the sandbox).

Reads pred.npy (the rolled-out snapshots) and result.json, written by the harness parent
(run.py) after every child exited, rebuilds the setting's true test trajectories from the
label, the seed and the instance key with the fixed solver (repo/pde.py; the hidden setting's
spec and the final key from hidden/), and recomputes the rollout error itself: the mean over
test trajectories of ||pred - true||_2 / ||true||_2 over every rolled-out snapshot and cell
(PDEBench's nRMSE). The harness's own number must agree with it.
"""

from __future__ import annotations

import pathlib

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"burgers-shock": "burgers-shock.json"}
BATCH, STEPS = 32, 200  # what run.py fixes; a run that reports others is refused


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    pde = private_module(task_dir / "repo" / "pde.py", "_pde_autoregressive_grader_pde")
    run = read_kit_result(setting, seed, out_dir, task_dir, pde, HIDDEN)
    if (run.record.get("steps"), run.record.get("batch")) != (STEPS, BATCH):
        raise ValueError(
            f"the run trained {run.record.get('steps')} steps of batch "
            f"{run.record.get('batch')}; the task fixes {STEPS} steps of batch {BATCH}"
        )
    pred = run.array("pred.npy", "rollout")
    true = pde.instance(run.name, run.spec, seed, run.key, "test")[:, pde.T_IN :]
    if pred.dtype != np.float32 or pred.shape != true.shape:
        raise ValueError(
            f"pred.npy must be float32 of shape {true.shape}, got {pred.dtype} {pred.shape}"
        )
    if not np.isfinite(pred).all():
        raise ValueError("pred.npy holds non-finite values")
    error = pde.rollout_error(pred, true)
    run.check_reported("rollout_error", error)
    return {"rollout_rel_l2": error}
