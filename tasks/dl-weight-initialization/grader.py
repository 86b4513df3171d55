"""Trusted grader of dl-weight-initialization (runs outside the sandbox).

Reads predictions.npy and result.json, written by the harness parent (run.py) after the
initializer's process exited, rebuilds the setting's test labels from the label, the seed and
the instance key (repo/data.py; the hidden setting's spec from hidden/) and recomputes the test
accuracy itself; the harness's own number must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

HIDDEN = {"fashion-mlp40-tanh": "fashion-mlp40-tanh.json"}


def _module(task_dir: pathlib.Path, file: str):
    # a private module name, so that nothing clashes with other tasks' graders
    name = f"_weight_init_grader_{file[:-3]}"
    spec = importlib.util.spec_from_file_location(name, task_dir / "repo" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _visible_settings(task_dir: pathlib.Path) -> dict:
    # nets.py imports torch and the kit; the settings are read from its source instead
    import ast

    tree = ast.parse((task_dir / "repo" / "nets.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SETTINGS":
            return ast.literal_eval(node.value)
    raise ValueError("nets.py defines no SETTINGS")


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    visible = _visible_settings(task_dir)
    if setting in visible:
        name, spec = setting, visible[setting]
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
    else:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted((*visible, *HIDDEN))}")
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
    data = _module(task_dir, "data.py")
    if r.get("instance") == "public":
        key = data.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    pred_path = out_dir / "predictions.npy"
    if not pred_path.is_file():
        raise FileNotFoundError("no predictions.npy: the harness wrote no test predictions")
    pred = np.load(pred_path, allow_pickle=False)
    labels = data.test_labels(name, spec, seed, key)
    if not np.issubdtype(pred.dtype, np.integer) or pred.shape != labels.shape:
        raise ValueError(
            f"predictions.npy must hold {labels.shape[0]} integers, got {pred.dtype} {pred.shape}"
        )
    accuracy = float((pred == labels).mean())
    reported = float(r.get("accuracy", math.nan))
    if not math.isclose(accuracy, reported, rel_tol=0, abs_tol=1e-12):
        raise ValueError(
            f"the accuracy of the predictions is {accuracy!r} but the harness recorded {reported!r}"
        )
    return {"accuracy": accuracy}
