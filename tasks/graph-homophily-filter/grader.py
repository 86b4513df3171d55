"""Trusted grader: test accuracy (%) of the harness's predictions against regenerated labels.

The labels and the split are regenerated here from the fixed generators (repo/ and hidden/) and
the run's seed; the harness's data fingerprint must match them. Nothing the editable code wrote
is read: run.json and predictions.npy are written by the harness's parent process after the
filter's child process has exited.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np

_MODULES = ("csbm", "settings", "harness", "readout", "dcsbm", "hidden_settings")


def _load(task_dir: Path):
    """Import the task's generators without leaving them in sys.modules/sys.path."""
    saved_path = list(sys.path)
    saved_mods = {name: sys.modules.pop(name, None) for name in _MODULES}
    try:
        sys.path[:0] = [str(task_dir / "hidden"), str(task_dir / "repo")]
        harness = importlib.import_module("harness")
        table = dict(importlib.import_module("settings").SETTINGS)
        table.update(importlib.import_module("hidden_settings").SETTINGS)
        return harness, table
    finally:
        sys.path[:] = saved_path
        for name, mod in saved_mods.items():
            sys.modules.pop(name, None)
            if mod is not None:
                sys.modules[name] = mod


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir, task_dir = Path(out_dir), Path(task_dir)
    run_path = out_dir / "run.json"
    if not run_path.exists():
        raise RuntimeError("missing artifact run.json: the harness did not finish")
    run = json.loads(run_path.read_text())
    if run.get("status") != "ok":
        raise RuntimeError(f"setting failed: {run.get('reason', 'unknown reason')}")
    if run.get("setting") != setting or int(run.get("seed", -1)) != int(seed):
        raise RuntimeError(
            f"run.json is for setting {run.get('setting')!r} seed "
            f"{run.get('seed')}, expected {setting!r} seed {seed}"
        )
    harness, table = _load(task_dir)
    if setting not in table:
        raise RuntimeError(f"unknown setting {setting!r}")
    salt = None
    if run.get("salted"):
        salt = int(json.loads((task_dir / "hidden" / "data_salt.json").read_text())["salt"])
    data = harness.generate(table, setting, int(seed), salt)
    if harness.fingerprint(data) != run.get("fingerprint"):
        raise RuntimeError("the harness's data fingerprint does not match the regenerated data")
    pred_path = out_dir / "predictions.npy"
    if not pred_path.exists():
        raise RuntimeError("missing artifact predictions.npy")
    pred = np.load(pred_path, allow_pickle=False)
    if pred.shape != data.test_idx.shape or pred.dtype.kind not in "iu":
        raise RuntimeError(
            f"predictions must be {data.test_idx.size} integers, got shape "
            f"{pred.shape} dtype {pred.dtype}"
        )
    if pred.size and (pred.min() < 0 or pred.max() >= data.num_classes):
        raise RuntimeError(f"predicted classes must lie in [0, {data.num_classes})")
    accuracy = 100.0 * float(np.mean(pred == data.labels[data.test_idx]))
    return {"accuracy": accuracy}
