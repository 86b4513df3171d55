"""Trusted grader of pde-autoregressive-solver (runs outside the sandbox).

Reads pred.npy (the rolled-out snapshots) and result.json, written by the harness parent
(run.py) after every child exited, rebuilds the setting's true test trajectories from the
label, the seed and the instance key with the fixed solver (repo/pde.py; the hidden setting's
spec and the final key from hidden/), and recomputes the rollout error itself: the mean over
test trajectories of ||pred - true||_2 / ||true||_2 over every rolled-out snapshot and cell
(PDEBench's nRMSE). The harness's own number must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

HIDDEN = {"burgers-shock": "burgers-shock.json"}
BATCH, STEPS = 32, 200  # what run.py fixes; a run that reports others is refused


def _pde(task_dir: pathlib.Path):
    name = "_pde_autoregressive_grader_pde"  # private, so nothing clashes with other graders
    spec = importlib.util.spec_from_file_location(name, task_dir / "repo" / "pde.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    pde = _pde(task_dir)
    if setting in pde.SETTINGS:
        name, spec = setting, dict(pde.SETTINGS[setting])
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
    else:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted((*pde.SETTINGS, *HIDDEN))}")
    path = out_dir / "result.json"
    if not path.is_file():
        raise FileNotFoundError("no result.json: the run failed (see the log)")
    r = json.loads(path.read_text())
    if r.get("error"):
        raise ValueError(f"the run failed: {r['error']}")
    if (r.get("setting"), r.get("seed"), r.get("spec")) != (name, seed, spec):
        raise ValueError(
            f"result.json is for {r.get('setting')!r} seed {r.get('seed')}, "
            f"expected {name!r} seed {seed} with spec {spec}"
        )
    if (r.get("steps"), r.get("batch")) != (STEPS, BATCH):
        raise ValueError(
            f"the run trained {r.get('steps')} steps of batch {r.get('batch')}; "
            f"the task fixes {STEPS} steps of batch {BATCH}"
        )
    if r.get("instance") == "public":
        key = pde.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    pred_path = out_dir / "pred.npy"
    if not pred_path.is_file():
        raise FileNotFoundError("no pred.npy: the harness wrote no rollout")
    pred = np.load(pred_path, allow_pickle=False)
    true = pde.instance(name, spec, seed, key, "test")[:, pde.T_IN :]
    if pred.dtype != np.float32 or pred.shape != true.shape:
        raise ValueError(
            f"pred.npy must be float32 of shape {true.shape}, got {pred.dtype} {pred.shape}"
        )
    if not np.isfinite(pred).all():
        raise ValueError("pred.npy holds non-finite values")
    error = pde.rollout_error(pred, true)
    reported = float(r.get("rollout_error", math.nan))
    if not math.isclose(error, reported, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"the rollout error of the predictions is {error!r} but the harness recorded "
            f"{reported!r}"
        )
    return {"rollout_rel_l2": error}
