"""Trusted grader of cv-sample-weighting (runs outside the sandbox).

Reads pred.npy and result.json, written by the harness's parent process (run.py) after the
training process exited, redraws the instance's balanced test set from the setting, the seed and
the instance key (repo/ltdata.py; the hidden setting's spec from hidden/), reads the test labels
from the data files itself and recomputes the balanced accuracy of the predictions; the
harness's own number must agree with it.
"""

from __future__ import annotations

import pathlib

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"fmnist-cnn-ir10": "fmnist-cnn-ir10.json"}


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    ltdata = private_module(task_dir / "repo" / "ltdata.py", "_cv_sample_weighting_grader_ltdata")
    run = read_kit_result(setting, seed, out_dir, task_dir, ltdata, HIDDEN)
    y = ltdata.test_labels(run.name, run.spec, seed, run.key)
    pred = run.array("pred.npy", "predictions")
    if pred.shape != y.shape or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"pred.npy must hold {y.shape} integers, got {pred.dtype} {pred.shape}")
    score, _ = ltdata.balanced_accuracy(y, pred)
    run.check_reported("balanced_accuracy", score)
    return {"balanced_accuracy": score}
