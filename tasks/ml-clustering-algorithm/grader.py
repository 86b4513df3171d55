"""Trusted grader of ml-clustering-algorithm (runs outside the sandbox).

Reads labels.npy and result.json, written by the harness parent process (run.py) after the
clustering process exited, rebuilds the setting's true classes from the label, the seed and the
instance key (repo/datasets.py; the hidden settings' specs and kinds from hidden/) and
recomputes the adjusted Rand index and the normalized mutual information of the labels itself
(repo/agreement.py); the harness's own numbers must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

VISIBLE = ("blobs-k8-d10", "moons", "varied-density", "digits")
HIDDEN = {"aniso-blobs": "aniso-blobs.json", "fashion-pca30": "fashion-pca30.json"}


def _module(path: pathlib.Path, name: str):
    # a private module name, so that nothing clashes with other tasks' graders
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    datasets = _module(task_dir / "repo" / "datasets.py", "_clustering_grader_datasets")
    agreement = _module(task_dir / "repo" / "agreement.py", "_clustering_grader_agreement")
    makers = dict(datasets.MAKERS)
    if setting in VISIBLE:
        name, spec = setting, datasets.SETTINGS[setting]
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
        hidden = _module(task_dir / "hidden" / "hidden_sets.py", "_clustering_grader_hidden")
        makers.update(hidden.MAKERS)
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
        key = datasets.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    labels_path = out_dir / "labels.npy"
    if not labels_path.is_file():
        raise FileNotFoundError("no labels.npy: the harness wrote no labels")
    labels = np.load(labels_path, allow_pickle=False)
    _, y = datasets.make(name, spec, seed, key, makers, labels_only=True)
    if labels.shape != y.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels.npy must hold {y.shape} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.min() < -1:
        raise ValueError("labels.npy: a label below -1")
    metrics = {"ari": agreement.ari(y, labels), "nmi": agreement.nmi(y, labels)}
    for m, v in metrics.items():
        if not math.isclose(v, float(r.get(m, math.nan)), rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"{m} of the labels is {v!r} but the harness recorded {r.get(m)!r}")
    return metrics
