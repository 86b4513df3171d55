"""Registers ``mlsbench/<task-id>-v<N>`` with gymnasium for every shipped task."""

from __future__ import annotations

import re

import gymnasium as gym

from mlsbench_env.spec import builtin_task_ids, builtin_tasks_dir

_VERSION = re.compile(r"^version:\s*(\d+)\s*$", re.MULTILINE)


def register_tasks() -> list[str]:
    """Register every shipped task (cheap: reads only each task.yaml's version line)."""
    ids = []
    for task_id in builtin_task_ids():
        text = (builtin_tasks_dir() / task_id / "task.yaml").read_text()
        m = _VERSION.search(text)
        gym_id = f"mlsbench/{task_id}-v{m.group(1) if m else 0}"
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
