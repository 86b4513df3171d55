"""The trusted task kit: what every task's harness shares, in one place.

A harness (fixed, trusted code in a task's workspace) runs agent code through the kit: in a
``Child`` process that drops its privileges before it imports agent code, behind a pipe of raw
byte frames; it counts resources with ``Budget`` in the parent, reads secrets with
``read_secret`` and writes results with ``write_artifacts`` after every child has exited.
Standard library only (numpy and torch imported where used); it never imports the rest of
``mlsbench_env``, so it enters each workspace as the fixed package ``taskkit``.
"""

from .artifacts import out_dir_from_env, write_artifacts, write_budget_verdict
from .budget import Budget
from .child import Child, RunFailure, ask_parent, close_all, send_failure, send_frame
from .privilege import landlock_abi
from .secrets import read_secret
from .setting import run_seed, setting_spec

__all__ = [
    "Budget",
    "ask_parent",
    "Child",
    "RunFailure",
    "close_all",
    "landlock_abi",
    "out_dir_from_env",
    "read_secret",
    "run_seed",
    "send_failure",
    "send_frame",
    "setting_spec",
    "write_artifacts",
    "write_budget_verdict",
]
