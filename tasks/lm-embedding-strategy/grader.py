"""Trusted grader for lm-embedding-strategy (runs outside the sandbox).

The harness parent (repo/harness.py) computes the per-character cross-entropy itself from the
logits the evaluation child returns and writes, after both children have exited, result.json
(status, the checks' verdict, parameter count, steps) and nll.npy (the loss of every predicted
byte, in nats).  The grader takes the setting's budgets from the pristine task files (never from
the artifacts), checks them, and recomputes bits per character = mean(nll) / ln 2.
A failed run (non-causal model, parameter cap exceeded, state kept between calls, a parameter
changed outside the optimizer, a forbidden construct, a crash) fails the setting with the
harness's message.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np

HIDDEN = {
    "milton-d64-l2-ctx96": dict(
        d_model=64, n_layer=2, n_head=4, block_size=96, steps=250, batch_size=12, eval_windows=96
    ),
}


def _settings(task_dir: Path):
    spec = importlib.util.spec_from_file_location(
        "_lmes_grader_settings", task_dir / "repo" / "settings.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    S = _settings(Path(task_dir))
    spec = S.SETTINGS.get(setting) or HIDDEN.get(setting)
    if spec is None:
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
    d, L, T = spec["d_model"], spec["n_layer"], spec["block_size"]
    cap = S.param_cap(d, L, T)
    n_params = int(rec.get("n_params", -1))
    if not 0 < n_params <= cap:
        raise ValueError(f"parameter cap exceeded: {n_params} trainable parameters, cap {cap}")
    if (
        int(rec.get("steps", -1)) != spec["steps"]
        or int(rec.get("batch_size", -1)) != spec["batch_size"]
        or int(rec.get("block_size", -1)) != T
    ):
        raise ValueError("the run used other steps / batch size / context than the setting fixes")
    nll_path = out_dir / "nll.npy"
    if not nll_path.is_file():
        raise ValueError("no nll.npy in the output directory")
    nll = np.load(nll_path, allow_pickle=False)
    expected = (spec["eval_windows"], T)
    if nll.dtype != np.float64 or nll.shape != expected:
        raise ValueError(
            f"nll.npy must be float64 of shape {expected}, got {nll.dtype} {nll.shape}"
        )
    if not np.all(np.isfinite(nll)) or nll.min() < -1e-6:
        raise ValueError("nll.npy contains invalid values")
    return {"bpc": float(nll.mean() / math.log(2))}
