"""Trusted grader for optimization-gradient-compression (runs outside the sandbox).

Reads the run record written by the harness parent after every child process had exited, checks
that the run finished every step within the bit budget (a worker's payloads for one step, and the
aggregator's replies for one step, at most floor(32 * n_params / ratio) bits, as counted by the
parent from the serialised payloads), and scores the test predictions against the test labels,
which it loads itself (they never enter the training run's processes).
Metrics: accuracy (test accuracy in %, higher is better, bound 100) and, reported only,
kbits_per_worker_step (mean uplink kilobits a worker sent per step).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np

SETTINGS = {
    "digits-mlp-k4-r32": ("setting", "digits-mlp-k4-r32"),
    "fashion14-mlp-k4-r48": ("setting", "fashion14-mlp-k4-r48"),
    "fashion14-cnn-k6-r24": ("spec", "extra_setting.json"),
}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def setting_spec(setting: str, task_dir: Path) -> tuple[dict, str]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    if kind == "setting":
        return _load(task_dir / "repo" / "settings.py", "_gc_grader_settings").SETTINGS[name], name
    return json.loads((task_dir / "hidden" / name).read_text()), name


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    spec, name = setting_spec(setting, task_dir)
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    if rec.get("setting") != name or int(rec.get("seed", -1)) != int(seed):
        raise ValueError(
            f"run.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if rec.get("violation"):
        raise ValueError(rec["violation"])
    if rec.get("status") != "ok" or rec.get("error"):
        raise ValueError(f"the training run failed: {rec.get('error')}")
    numel, ratio = int(rec["numel"]), float(spec["ratio"])
    budget = int(math.floor(32 * numel / ratio))
    if int(rec["budget_bits"]) != budget or int(rec["workers"]) != int(spec["workers"]):
        raise ValueError("run record does not match the setting (budget or workers)")
    if int(rec["max_worker_bits"]) > budget or int(rec["max_reply_bits"]) > budget:
        raise ValueError(
            f"bit budget exceeded: a worker sent {rec['max_worker_bits']} bits in one "
            f"step (budget {budget})"
        )
    if int(rec["steps_done"]) != int(spec["steps"]):
        raise ValueError(f"the run did {rec['steps_done']} of {spec['steps']} steps")
    data = _load(Path(task_dir) / "repo" / "data.py", "_gc_grader_data")
    labels = data.test_labels(spec["dataset"])
    path = out_dir / "preds.npy"
    if not path.is_file():
        raise ValueError("no preds.npy in the output directory")
    preds = np.load(path, allow_pickle=False)
    if preds.shape != labels.shape or preds.dtype.kind not in "iu":
        raise ValueError(
            f"predictions must be integers of shape {labels.shape}, got {preds.dtype} {preds.shape}"
        )
    acc = 100.0 * float(np.mean(preds == labels))
    return {
        "accuracy": acc,
        "kbits_per_worker_step": float(rec["mean_worker_bits_per_step"]) / 1000.0,
    }
