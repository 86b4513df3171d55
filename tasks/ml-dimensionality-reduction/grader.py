"""Trusted grader of ml-dimensionality-reduction (runs outside the sandbox).

Reads embedding.npy and result.json, written by the harness parent process (run.py) after the
embedding's process exited, rebuilds the setting's instance from the label, the seed and the
instance key (repo/datasets.py; the hidden setting's spec and generator from hidden/) and
recomputes every metric of the embedding itself (repo/metrics.py); the harness's own knn_score
must agree with it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

VISIBLE = ("digits", "fashion-mnist", "s-curve")
HIDDEN = {"bag-of-words": "bag-of-words.json"}


def _module(path: pathlib.Path, name: str):
    # a private module name, so that nothing clashes with other tasks' graders or packages
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
    datasets = _module(task_dir / "repo" / "datasets.py", "_dimred_grader_datasets")
    metrics = _module(task_dir / "repo" / "metrics.py", "_dimred_grader_metrics")
    generators = {}
    if setting in VISIBLE:
        name, spec = setting, datasets.SETTINGS[setting]
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
        gen = _module(task_dir / "hidden" / f"{spec['generator']}.py", "_dimred_grader_gen")
        generators[spec["kind"]] = gen
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
    emb_path = out_dir / "embedding.npy"
    if not emb_path.is_file():
        raise FileNotFoundError("no embedding.npy: the harness wrote no embedding")
    data = datasets.load(name, spec, seed, key, generators)
    Y = metrics.check_embedding(np.load(emb_path, allow_pickle=False), len(data.X), 2)
    score = metrics.evaluate(data.X, Y, data.labels, data.targets, k=datasets.K)
    reported = float(r.get("knn_score", math.nan))
    if not math.isclose(score["knn_score"], reported, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"knn_score of the embedding is {score['knn_score']!r} "
            f"but the harness recorded {reported!r}"
        )
    return score
