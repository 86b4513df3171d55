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


class BudgetExhausted(MLSBenchError):
    """A budget ran out."""
