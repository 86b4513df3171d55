"""Trusted grader of dl-weight-initialization (runs outside the sandbox).

Reads predictions.npy and result.json, written by the harness parent (run.py) after the
initializer's process exited, rebuilds the setting's test labels from the label, the seed and
the instance key (repo/data.py; the hidden setting's spec from hidden/) and recomputes the test
accuracy itself; the harness's own number must agree with it.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"fashion-mlp40-tanh": "fashion-mlp40-tanh.json"}


def _visible_settings(task_dir: pathlib.Path) -> dict:
    # nets.py imports torch and the kit; the settings are read from its source instead
    tree = ast.parse((task_dir / "repo" / "nets.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SETTINGS":
            return ast.literal_eval(node.value)
    raise ValueError("nets.py defines no SETTINGS")


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    data = private_module(task_dir / "repo" / "data.py", "_weight_init_grader_data")
    run = read_kit_result(
        setting, seed, out_dir, task_dir, data, HIDDEN, visible=_visible_settings(task_dir)
    )
    pred = run.array("predictions.npy", "test predictions")
    labels = data.test_labels(run.name, run.spec, seed, run.key)
    if not np.issubdtype(pred.dtype, np.integer) or pred.shape != labels.shape:
        raise ValueError(
            f"predictions.npy must hold {labels.shape[0]} integers, got {pred.dtype} {pred.shape}"
        )
    accuracy = float((pred == labels).mean())
    run.check_reported("accuracy", accuracy, rel_tol=0)
    return {"accuracy": accuracy}
