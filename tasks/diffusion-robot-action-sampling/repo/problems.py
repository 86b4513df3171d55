"""The visible problems (fixed file). A problem: an environment, the NFE budget per action chunk,
the number of closed-loop episodes, and the distribution of their start instances.

Instances are drawn from (base_seed, run seed, salt). At the final evaluation the harness receives
a salt (an integer unknown to the sampler's author, over the environment's secrets channel, never a
file) so that the evaluated episodes cannot be anticipated; without it (in development) it is 0.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PROBLEMS = {
    "reach-nfe2": dict(env="reach", nfe=2, episodes=1000, base_seed=101, instance={}),
    "reach-nfe4": dict(env="reach", nfe=4, episodes=1000, base_seed=202, instance={}),
}


def load_salt(path: str | Path | None = None) -> int:
    """The salt: from ``path`` (the grader's copy), else from the secrets channel, else 0."""
    if path is not None:
        p = Path(path)
        return int(json.loads(p.read_text())["salt"]) if p.is_file() else 0
    from taskkit import read_secret

    text = read_secret("salt.json")
    return int(json.loads(text)["salt"]) if text else 0


def instances(spec: dict, seed: int, salt: int = 0):
    import envs

    env = envs.ENVS[spec["env"]]
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), int(salt)])
    return env, env.instances(rng, int(spec["episodes"]), **spec.get("instance", {}))
