"""One error hierarchy: every message says what was expected, what was received, what to do."""

from __future__ import annotations

import difflib


class MLSBenchError(Exception):
    """Base class of every error the library raises on purpose."""


class TaskSpecError(MLSBenchError):
    """A task definition (task.yaml, baselines, anchors) is invalid."""

    def __init__(self, file: str, field: str, problem: str):
        self.file, self.field, self.problem = file, field, problem
        super().__init__(f"{file}: {field}: {problem}")


class UnknownNameError(MLSBenchError):
    """A name (task, baseline, backend, tool) that is not known; suggests the closest."""

    def __init__(self, kind: str, name: str, known: list[str], hint: str = ""):
        close = difflib.get_close_matches(name, known, n=1)
        msg = f"unknown {kind} {name!r}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        msg += f" Known: {', '.join(sorted(known)) or '(none)'}."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


class EditError(MLSBenchError):
    """An edit was refused; the file is untouched."""


class SandboxError(MLSBenchError):
    """The sandbox could not start or run a command."""


class ActionError(MLSBenchError, ValueError):
    """A malformed action; the message is the observation the agent gets."""


class JobCancelled(MLSBenchError):
    """A background test was cancelled."""


class AgentConfigError(MLSBenchError):
    """An agent YAML file or a --set override is invalid."""


class ModelError(MLSBenchError):
    """A failed model call (after the provider's own retries). ``overflow``: the server refused
    the request for its length (the loop trims and resends); it holds the numbers the server
    stated, ``{"window": N, "prompt_tokens": N}`` (either may be None)."""

    def __init__(self, message: str, *, overflow: dict | None = None):
        super().__init__(message)
        self.overflow = overflow


class ModelExhausted(MLSBenchError):
    """A scripted or replay model has no replies left."""


class PoolTimeout(MLSBenchError):
    """A reset waited longer than ``reset_timeout_s`` for a free episode slot."""


class StoreError(MLSBenchError):
    """The results store cannot be opened or has an unknown schema."""


class HTTPError(MLSBenchError):
    """The env server refuses a request: ``status`` is the HTTP status, ``detail`` why."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class RemoteEnvError(MLSBenchError):
    """The server refused a request; ``status`` is the HTTP status, the message its detail."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
