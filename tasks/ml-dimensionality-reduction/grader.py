"""Trusted grader of ml-dimensionality-reduction (runs outside the sandbox).

Reads embedding.npy and result.json, written by the harness parent process (run.py) after the
embedding's process exited, rebuilds the setting's instance from the label, the seed and the
instance key (repo/datasets.py; the hidden setting's spec and generator from hidden/) and
recomputes every metric of the embedding itself (repo/metrics.py); the harness's own knn_score
must agree with it.
"""

from __future__ import annotations

import pathlib

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"bag-of-words": "bag-of-words.json"}


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    datasets = private_module(task_dir / "repo" / "datasets.py", "_dimred_grader_datasets")
    metrics = private_module(task_dir / "repo" / "metrics.py", "_dimred_grader_metrics")
    run = read_kit_result(setting, seed, out_dir, task_dir, datasets, HIDDEN)
    generators = {}
    if setting in HIDDEN:
        path = task_dir / "hidden" / f"{run.spec['generator']}.py"
        generators[run.spec["kind"]] = private_module(path, "_dimred_grader_gen")
    embedding = run.array("embedding.npy", "embedding")
    data = datasets.load(run.name, run.spec, seed, run.key, generators)
    Y = metrics.check_embedding(embedding, len(data.X), 2)
    score = metrics.evaluate(data.X, Y, data.labels, data.targets, k=datasets.K)
    run.check_reported("knn_score", score["knn_score"])
    return score
