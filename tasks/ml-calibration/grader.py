"""Trusted grader of ml-calibration (runs outside the sandbox).

Reads probs.npy and result.json, written by the harness parent process (run.py) after the
calibrator's process exited; rebuilds the setting's test labels itself from the label, the seed
and the instance key (repo/setups.py, which loads or regenerates the data and redraws the splits
without training anything; the hidden setting's spec and module from hidden/), checks the
probabilities and recomputes ECE and NLL. The harness's own numbers must agree with it.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"svm-breast-cancer": "svm-breast-cancer.json"}


def _labels(setups, name, spec, seed, key, task_dir):
    """The test labels of every split, as the harness drew them."""
    extra = spec.get("module")
    if extra is not None:
        # setups imports the hidden setting's module by name; lend it for this call only
        path = task_dir / "hidden" / f"{extra}.py"
        sys.modules[extra] = private_module(path, f"_ml_calibration_{extra}")
    try:
        _, y = setups.load(name, spec, seed, key, labels_only=True)
    finally:
        if extra is not None:
            del sys.modules[extra]
    _, splits = setups.partition(name, spec, seed, key, len(y))
    return np.stack([y[test] for _, test in splits]), int(y.max()) + 1


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    setups = private_module(task_dir / "repo" / "setups.py", "_ml_calibration_grader_setups")
    run = read_kit_result(setting, seed, out_dir, task_dir, setups, HIDDEN)
    y, n_classes = _labels(setups, run.name, run.spec, seed, run.key, task_dir)
    probs = run.array("probs.npy", "calibrated probabilities")
    if probs.dtype != np.float64 or probs.shape != (*y.shape, n_classes):
        raise ValueError(
            f"probs.npy must be float64 of shape {(*y.shape, n_classes)}, "
            f"got {probs.dtype} {probs.shape}"
        )
    for i, (p, labels) in enumerate(zip(probs, y, strict=True)):
        why = setups.check_probs(p, len(labels), n_classes)
        if why:
            raise ValueError(f"probs.npy split {i}: {why}")
    metrics = {
        "ece": float(np.mean([setups.ece(p, t) for p, t in zip(probs, y, strict=True)])),
        "nll": float(np.mean([setups.nll(p, t) for p, t in zip(probs, y, strict=True)])),
    }
    for metric, value in metrics.items():
        run.check_reported(metric, value)
    return metrics
