"""Vectorized episodes that keep the text.

gymnasium's ``AsyncVectorEnv`` defaults to shared memory, which silently turns ``Text``
observations into strings of zeros; the registered vector entry point (what
``gym.make_vec(id, n)`` uses by default) passes observations through pipes instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from mlsbench_env.env import ResearchEnv


def make_vector_env(
    task: str,
    num_envs: int = 1,
    vectorization_mode: str = "async",
    vector_kwargs: dict[str, Any] | None = None,
    **env_options,
):
    """``num_envs`` episodes of ``task``; async (one process each) unless ``"sync"``."""
    fns = [lambda: ResearchEnv(task=task, **env_options) for _ in range(num_envs)]
    kwargs = dict(vector_kwargs or {})
    if vectorization_mode == "sync":
        return gym.vector.SyncVectorEnv(fns, **kwargs)
    kwargs["shared_memory"] = False
    return gym.vector.AsyncVectorEnv(fns, **kwargs)
