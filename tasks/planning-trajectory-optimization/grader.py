"""Trusted grader: replays the recorded actions through its own copy of the dynamics.

The harness's parent process writes ``result.json`` (actions, return, budget counters). This
grader rebuilds the seed's real system from the pristine task files (``repo/envs.py``, and
``hidden/env_hidden.py`` for the hidden setting; at the final evaluation with the secret salt,
``hidden/salt.txt``), replays the actions, and checks that the recorded return matches the
replay and that every budget the question fixes was respected.
Any violation raises, which fails the setting.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

HARNESS_VERSION = 2

# setting label -> (file relative to the task folder, class name)
SETTINGS = {
    "pendulum-swingup": ("repo/envs.py", "Pendulum"),
    "cartpole-swingup": ("repo/envs.py", "CartPole"),
    "reacher-2link": ("repo/envs.py", "Reacher"),
    "acrobot-swingup": ("hidden/env_hidden.py", "Acrobot"),
}


def _load(path: Path, name: str, envs_module=None):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("envs")
    if envs_module is not None:
        sys.modules["envs"] = envs_module  # env_hidden.py does `from envs import ControlEnv`
    try:
        spec.loader.exec_module(module)
    finally:
        if envs_module is not None:
            if saved is None:
                sys.modules.pop("envs", None)
            else:
                sys.modules["envs"] = saved
    return module


def _env_class(setting: str, task_dir: Path):
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; expected one of {sorted(SETTINGS)}")
    rel, cls_name = SETTINGS[setting]
    envs = _load(task_dir / "repo" / "envs.py", "_pto_grader_envs")
    if rel == "repo/envs.py":
        return getattr(envs, cls_name)
    return getattr(_load(task_dir / rel, "_pto_grader_hidden", envs_module=envs), cls_name)


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir, task_dir = Path(out_dir), Path(task_dir)
    path = out_dir / "result.json"
    if not path.is_file():
        raise RuntimeError(f"missing artifact {path.name}: the harness did not finish the episode")
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RuntimeError(f"artifact {path.name} is not valid JSON: {e}") from None
    if rec.get("status") != "ok":
        raise RuntimeError(f"episode failed: {rec.get('error')}")
    if rec.get("harness_version") != HARNESS_VERSION:
        raise RuntimeError(f"artifact from harness version {rec.get('harness_version')!r}")

    instance = rec.get("instance")
    if instance == "public":
        salt = None
    elif instance == "final":
        salt = int((task_dir / "hidden" / "salt.txt").read_text())
    else:
        raise RuntimeError(f"artifact names an unknown instance {instance!r}")
    env_cls = _env_class(setting, task_dir)
    env = env_cls(int(seed), salt)
    if rec.get("env") != env.name or rec.get("seed") != int(seed):
        raise RuntimeError(
            f"artifact is for env {rec.get('env')!r} seed {rec.get('seed')!r}, "
            f"expected {env.name!r} seed {seed}"
        )

    # budget counters, against the grader's own copy of the limits
    steps = rec.get("steps_per_control")
    if not isinstance(steps, list) or len(steps) != env.episode_len:
        raise RuntimeError(
            f"expected {env.episode_len} per-step budget counters, got "
            f"{len(steps) if isinstance(steps, list) else steps!r}"
        )
    over = [
        (t, s) for t, s in enumerate(steps) if not isinstance(s, int) or s < 0 or s > env.budget
    ]
    if over:
        t, s = over[0]
        raise RuntimeError(
            f"planning budget exceeded: {s} model steps at control step {t} "
            f"(budget {env.budget} per step; {len(over)} step(s) over)"
        )
    used_h = rec.get("max_horizon_used")
    if not isinstance(used_h, int) or used_h > env.max_horizon:
        raise RuntimeError(
            f"rollout horizon {rec.get('max_horizon_used')!r} exceeds max_horizon {env.max_horizon}"
        )
    requests = rec.get("requests_per_control")
    if (
        not isinstance(requests, list)
        or len(requests) != env.episode_len
        or any(
            not isinstance(n, int) or n < 0 or n > s for n, s in zip(requests, steps, strict=True)
        )
    ):
        raise RuntimeError("request counters are impossible (negative, or more than the steps)")
    if not isinstance(rec.get("refused"), int) or rec["refused"] < 0:
        raise RuntimeError(f"refused-request counter {rec.get('refused')!r} is impossible")
    if rec.get("total_model_steps") != sum(steps):
        raise RuntimeError("budget counters are inconsistent (total != sum of per-step counts)")

    # replay
    actions = np.asarray(rec.get("actions"), dtype=np.float64)
    if actions.shape != (env.episode_len, env.act_dim):
        raise RuntimeError(
            f"expected actions of shape {(env.episode_len, env.act_dim)}, got {actions.shape}"
        )
    if not np.all(np.isfinite(actions)) or np.abs(actions).max() > 1.0:
        raise RuntimeError("recorded actions must be finite and inside [-1, 1]")
    ret = env.replay(actions)
    recorded = rec.get("return")
    if not isinstance(recorded, (int, float)) or not math.isfinite(ret):
        raise RuntimeError(f"invalid return (recorded {recorded!r}, replayed {ret!r})")
    if abs(ret - recorded) > 1e-6 * max(1.0, abs(ret)):
        raise RuntimeError(
            f"recorded return {recorded!r} does not match the replay of the recorded actions "
            f"({ret!r}): the artifact is inconsistent"
        )
    return {"episode_return": float(ret)}
