"""A final-evaluation run's secrets (an instance key, a salt, the spec of a setting kept back).

The environment hands them to the harness process over a descriptor named by
``MLSBENCH_SECRETS_FD``: inherited by that process only, read once and closed, never a file of
the run folder, an environment variable or an argument. Children the kit starts never get it.
"""

from __future__ import annotations

import json
import os

_SECRETS: dict[str, str] | None = None


def read_secret(name: str) -> str | None:
    """The secret ``name`` (a file name of the task's ``secrets:``), or None in test runs,
    where the channel is absent."""
    global _SECRETS
    if _SECRETS is None:
        fd = os.environ.pop("MLSBENCH_SECRETS_FD", None)
        _SECRETS = {}
        if fd is not None:
            with os.fdopen(int(fd)) as f:
                _SECRETS = json.load(f)
    return _SECRETS.get(name)
