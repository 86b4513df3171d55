"""Trusted grader for climate-column-emulator (runs outside the sandbox).

The harness parent (repo/harness.py) writes, after both children have exited, result.json
(status, the checks' verdict, parameter count, epochs, steps) and pred.npy (the standardized
predictions for every test column).  The grader takes the setting's budgets from the pristine
task files (never from the artifacts), checks them, and scores the predictions against the test
targets in private/ (never visible to the agent):

  r2    R^2 = 1 - SSE / SST of each output (variable x level, and the two surface scalars) over
        the test columns, averaged over the outputs that carry signal (stats.json r2_mask: 93 of
        122; moisture and wind tendencies near the top, where convection is rare or absent, are
        left out), as in ClimSim (Yu et al. 2023);
  rmse  root mean squared error over the same outputs, each in units of its training standard
        deviation (dimensionless).
A failed run (parameter cap exceeded, a parameter changed outside the optimizer, state kept
between calls, a forbidden construct, a crash) fails the setting with the harness's message.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

HIDDEN = {"warm-climate": dict(epochs=10, targets="warm_test_y.npy")}
VISIBLE_TARGETS = "test_y.npy"


def _settings(task_dir: Path):
    spec = importlib.util.spec_from_file_location(
        "_cce_grader_settings", task_dir / "repo" / "settings.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def scores(pred: np.ndarray, y: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    pred = pred.astype(np.float64)[:, mask]
    y = y.astype(np.float64)[:, mask]
    sse = ((pred - y) ** 2).sum(0)
    sst = ((y - y.mean(0)) ** 2).sum(0)
    return {"r2": float(np.mean(1.0 - sse / sst)), "rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    task_dir = Path(task_dir)
    S = _settings(task_dir)
    if setting in S.SETTINGS:
        epochs, targets = S.SETTINGS[setting]["epochs"], VISIBLE_TARGETS
    elif setting in HIDDEN:
        epochs, targets = HIDDEN[setting]["epochs"], HIDDEN[setting]["targets"]
    else:
        raise ValueError(f"unknown setting {setting!r}")
    out_dir = Path(out_dir)
    path = out_dir / "result.json"
    if not path.is_file():
        raise ValueError("no result.json in the output directory: the harness did not finish")
    rec = json.loads(path.read_text())
    if rec.get("setting") != setting or int(rec.get("seed", -1)) != int(seed):
        raise ValueError(
            f"result.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {setting!r} seed {seed}"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the run failed: {rec.get('error')}")
    stats = json.loads((task_dir / "repo" / "data" / "stats.json").read_text())
    n_params = int(rec.get("n_params", -1))
    if not 0 < n_params <= S.PARAM_CAP:
        raise ValueError(
            f"parameter cap exceeded: {n_params} parameters and buffers, cap {S.PARAM_CAP}"
        )
    steps = epochs * (int(stats["n_train"]) // S.BATCH_SIZE)
    if (
        int(rec.get("epochs", -1)) != epochs
        or int(rec.get("steps", -1)) != steps
        or int(rec.get("batch_size", -1)) != S.BATCH_SIZE
    ):
        raise ValueError("the run used other epochs / steps / batch size than the setting fixes")
    y = np.load(task_dir / "private" / targets, allow_pickle=False)
    pred_path = out_dir / "pred.npy"
    if not pred_path.is_file():
        raise ValueError("no pred.npy in the output directory")
    pred = np.load(pred_path, allow_pickle=False)
    if pred.dtype != np.float32 or pred.shape != y.shape:
        raise ValueError(
            f"pred.npy must be float32 of shape {y.shape}, got {pred.dtype} {pred.shape}"
        )
    if not np.all(np.isfinite(pred)):
        raise ValueError("pred.npy contains non-finite values")
    mask = np.asarray(stats["r2_mask"], dtype=bool)
    return scores(pred, y, mask)
