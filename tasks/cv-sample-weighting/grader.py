"""Trusted grader of cv-sample-weighting (runs outside the sandbox).

Reads pred.npy and result.json, written by the harness's parent process (run.py) after the
training process exited, redraws the instance's balanced test set from the setting, the seed and
the instance key (repo/ltdata.py; the hidden setting's spec from hidden/), reads the test labels
from the data files itself and recomputes the balanced accuracy of the predictions; the
harness's own number must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

VISIBLE = ("fmnist-ir100", "digits-ir100")
HIDDEN = {"fmnist-cnn-ir10": "fmnist-cnn-ir10.json"}


def _ltdata(task_dir: pathlib.Path):
    # a private module name, so that nothing clashes with other tasks' graders
    name = "_cv_sample_weighting_grader_ltdata"
    spec = importlib.util.spec_from_file_location(name, task_dir / "repo" / "ltdata.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    ltdata = _ltdata(task_dir)
    if setting in VISIBLE:
        name, spec = setting, ltdata.SETTINGS[setting]
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
        key = ltdata.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    y = ltdata.test_labels(name, spec, seed, key)
    pred_path = out_dir / "pred.npy"
    if not pred_path.is_file():
        raise FileNotFoundError("no pred.npy: the harness wrote no predictions")
    pred = np.load(pred_path, allow_pickle=False)
    if pred.shape != y.shape or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"pred.npy must hold {y.shape} integers, got {pred.dtype} {pred.shape}")
    score, _ = ltdata.balanced_accuracy(y, pred)
    reported = float(r.get("balanced_accuracy", math.nan))
    if not math.isclose(score, reported, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"balanced accuracy of the predictions is {score!r} "
            f"but the harness recorded {reported!r}"
        )
    return {"balanced_accuracy": score}
