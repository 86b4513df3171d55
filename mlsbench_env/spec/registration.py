"""Registers ``mlsbench/<task-id>-v<N>`` with gymnasium for every shipped task, and
``mlsbench/mlebench-<id>-v0`` for every MLE-bench competition when its package is installed."""

from __future__ import annotations

import re

import gymnasium as gym

from mlsbench_env.spec import builtin_task_ids, builtin_tasks_dir
from mlsbench_env.spec.mlebench import competition_ids as mlebench_ids

_VERSION = re.compile(r"^version:\s*(\d+)\s*$", re.MULTILINE)


def register_tasks() -> list[str]:
    """Register every shipped task (cheap: reads only each task.yaml's version line) and every
    MLE-bench competition (its data folder is read at gym.make: $MLSBENCH_MLEBENCH_DATA)."""
    ids = []
    versions = {}
    for task_id in builtin_task_ids():
        m = _VERSION.search((builtin_tasks_dir() / task_id / "task.yaml").read_text())
        versions[task_id] = m.group(1) if m else "0"
    versions.update({f"mlebench-{cid}": "0" for cid in mlebench_ids()})
    for task_id, version in versions.items():
        gym_id = f"mlsbench/{task_id}-v{version}"
        if gym_id not in gym.registry:
            gym.register(
                id=gym_id,
                entry_point="mlsbench_env.env:ResearchEnv",
                vector_entry_point="mlsbench_env.env.vector:make_vector_env",
                kwargs={"task": task_id},
                disable_env_checker=True,
            )
        ids.append(gym_id)
    return ids
