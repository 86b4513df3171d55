"""Trusted grader of ml-clustering-algorithm (runs outside the sandbox).

Reads labels.npy and result.json, written by the harness parent process (run.py) after the
clustering process exited, rebuilds the setting's true classes from the label, the seed and the
instance key (repo/datasets.py; the hidden settings' specs and kinds from hidden/) and
recomputes the adjusted Rand index and the normalized mutual information of the labels itself
(repo/agreement.py); the harness's own numbers must agree with it.
"""

from __future__ import annotations

import pathlib

import numpy as np

from mlsbench_env.evaluation.kit_result import private_module, read_kit_result

HIDDEN = {"aniso-blobs": "aniso-blobs.json", "fashion-pca30": "fashion-pca30.json"}


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    datasets = private_module(task_dir / "repo" / "datasets.py", "_clustering_grader_datasets")
    agreement = private_module(task_dir / "repo" / "agreement.py", "_clustering_grader_agreement")
    run = read_kit_result(setting, seed, out_dir, task_dir, datasets, HIDDEN)
    makers = dict(datasets.MAKERS)
    if setting in HIDDEN:
        hidden = private_module(task_dir / "hidden" / "hidden_sets.py", "_clustering_grader_hidden")
        makers.update(hidden.MAKERS)
    labels = run.array("labels.npy", "labels")
    _, y = datasets.make(run.name, run.spec, seed, run.key, makers, labels_only=True)
    if labels.shape != y.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels.npy must hold {y.shape} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.min() < -1:
        raise ValueError("labels.npy: a label below -1")
    metrics = {"ari": agreement.ari(y, labels), "nmi": agreement.nmi(y, labels)}
    for metric, value in metrics.items():
        run.check_reported(metric, value)
    return metrics
