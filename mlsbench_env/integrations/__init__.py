"""Adapters that let other frameworks drive mlsbench episodes unchanged.

One module per framework, each importing its framework lazily and needing its extra:

- ``openenv_server``: an OpenEnv server (``pip install 'mlsbench-env[openenv]'``), which TRL,
  verifiers, NeMo-Gym and OpenEnv's inspect bridge consume (``mlsbench serve --protocol openenv``)
- ``inspect_task``: an inspect_ai task, tools, scorer and ``mlsbench`` sandbox (``[inspect]``)
- ``trl_env``: a TRL ``environment_factory`` class (``[trl]``)
- ``skyrl_env``: a SkyRL ``BaseTextEnv`` registered with skyrl_gym (``[skyrl]``)

Every adapter steps the same ``ResearchEnv`` (budgets, the edit surface and the trajectory log
stay ours) and hands the framework the same slim metadata: budgets, scores, the tamper report
and the sandbox's isolation, with the tool schemas at reset.
"""

from __future__ import annotations

import importlib
from importlib import metadata as importlib_metadata
from typing import Any

from mlsbench_env.errors import MLSBenchError

# info keys never sent to a framework: the schemas travel once (at reset), and the final runs'
# records are the trajectory's (large, and nothing a trainer reads)
_HEAVY = ("tools", "final_runs")


def require(module: str, extra: str):
    """Import a framework's module, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MLSBenchError(
            f"this adapter needs {module!r} ({e}); install it with: "
            f"pip install 'mlsbench-env[{extra}]'"
        ) from None


def version_of(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def isolation_of(env) -> dict[str, bool] | None:
    """The protections the episode's sandbox has (None once it is closed)."""
    episode = getattr(env.unwrapped, "episode", None)
    sandbox = episode.sandbox if episode is not None else None
    if sandbox is None:
        return None
    try:
        return dict(sandbox.isolation())
    except Exception:  # a backend that cannot say is reported as unknown, not as a crash
        return None


def slim_info(info: dict, isolation: dict | None = None) -> dict[str, Any]:
    """What a framework gets of a step's info: all but the tool schemas and the final runs,
    plus the sandbox's isolation on the terminal step (next to the tamper report): each
    protection under ``isolation``, the env's one-word level under ``isolation_level``."""
    out = {k: v for k, v in info.items() if k not in _HEAVY}
    if isinstance(out.get("isolation"), str):  # the env's one-word level (full, rootless, none)
        out["isolation_level"] = out.pop("isolation")
    if "tamper_report" in out and isolation is not None:
        out["isolation"] = isolation
    return out


def mark_harness(env, framework: str, dist: str | None = None) -> None:
    """Record which framework (and version) drives the episode, right after its reset
    header, so a trajectory says which harness produced it."""
    record = getattr(env.unwrapped, "record", None)
    if record is not None:
        record(
            {"type": "harness", "framework": framework, "version": version_of(dist or framework)}
        )
