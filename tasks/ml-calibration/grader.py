"""Trusted grader of ml-calibration (runs outside the sandbox).

Reads probs.npy and result.json, written by the harness parent process (run.py) after the
calibrator's process exited; rebuilds the setting's test labels itself from the label, the seed
and the instance key (repo/setups.py, which loads or regenerates the data and redraws the splits
without training anything; the hidden setting's spec and module from hidden/), checks the
probabilities and recomputes ECE and NLL. The harness's own numbers must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

VISIBLE = ("rf-digits", "mlp-fashion", "gbm-madelon")
HIDDEN = {"svm-breast-cancer": "svm-breast-cancer.json"}


def _module(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _labels(setups, name, spec, seed, key, task_dir):
    """The test labels of every split, as the harness drew them."""
    extra = spec.get("module")
    if extra is not None:
        # setups imports the hidden setting's module by name; lend it for this call only
        sys.modules[extra] = _module(
            f"_ml_calibration_{extra}", task_dir / "hidden" / f"{extra}.py"
        )
    try:
        _, y = setups.load(name, spec, seed, key, labels_only=True)
    finally:
        if extra is not None:
            del sys.modules[extra]
    _, splits = setups.partition(name, spec, seed, key, len(y))
    return np.stack([y[test] for _, test in splits]), int(y.max()) + 1


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    setups = _module("_ml_calibration_grader_setups", task_dir / "repo" / "setups.py")
    if setting in VISIBLE:
        name, spec = setting, setups.SETTINGS[setting]
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
        key = setups.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    y, n_classes = _labels(setups, name, spec, seed, key, task_dir)
    probs_path = out_dir / "probs.npy"
    if not probs_path.is_file():
        raise FileNotFoundError("no probs.npy: the harness wrote no calibrated probabilities")
    probs = np.load(probs_path, allow_pickle=False)
    if probs.dtype != np.float64 or probs.shape != (*y.shape, n_classes):
        raise ValueError(
            f"probs.npy must be float64 of shape {(*y.shape, n_classes)}, "
            f"got {probs.dtype} {probs.shape}"
        )
    for i, (p, labels) in enumerate(zip(probs, y, strict=True)):
        why = setups.check_probs(p, len(labels), n_classes)
        if why:
            raise ValueError(f"probs.npy split {i}: {why}")
    ece = float(np.mean([setups.ece(p, t) for p, t in zip(probs, y, strict=True)]))
    nll = float(np.mean([setups.nll(p, t) for p, t in zip(probs, y, strict=True)]))
    for metric, value in (("ece", ece), ("nll", nll)):
        reported = float(r.get(metric, math.nan))
        if not math.isclose(value, reported, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(
                f"{metric} of the calibrated probabilities is {value!r} "
                f"but the harness recorded {reported!r}"
            )
    return {"ece": ece, "nll": nll}
