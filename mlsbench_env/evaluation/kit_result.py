"""What the graders of task-kit tasks share: loading the task's fixed modules under private
names, and reading the record the harness parent wrote (result.json) against the setting the
grader was asked about.

A kit task's harness parent writes result.json with the setting's name, the seed, the spec it
ran and which instances it drew (``public`` at test time, ``final`` with the secret key at the
final evaluation), beside the raw outputs (labels, predictions, arms) the grader recomputes the
metric from. `read_kit_result` checks that record and returns the instance key; a grader keeps
only its metric. Every failure is a ValueError or FileNotFoundError whose message says what was
wrong, since the agent reads it through the ``test`` tool.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np


def private_module(path: Path, name: str) -> ModuleType:
    """Import the file at ``path`` as ``name``, a name private to one grader, so that graders
    of different tasks never share a module (``sys.modules`` holds it only while it runs: a
    dataclass looks its module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@dataclass(frozen=True)
class KitResult:
    """One graded run: the setting's name and spec, the parent's record, the instance key."""

    name: str
    spec: dict
    record: dict
    key: str
    out_dir: Path

    def array(self, file: str, what: str) -> np.ndarray:
        """An array the harness parent saved (``what`` names it in the error)."""
        path = self.out_dir / file
        if not path.is_file():
            raise FileNotFoundError(f"no {file}: the harness wrote no {what}")
        return np.load(path, allow_pickle=False)

    def check_reported(
        self, metric: str, value: float, *, rel_tol: float = 1e-9, abs_tol: float = 1e-12
    ) -> None:
        """The harness's own number must agree with the one the grader recomputed."""
        reported = float(self.record.get(metric, math.nan))
        if not math.isclose(value, reported, rel_tol=rel_tol, abs_tol=abs_tol):
            raise ValueError(
                f"{metric} recomputed from the run's outputs is {float(value)!r} "
                f"but the harness recorded {reported!r}"
            )


def read_kit_result(
    setting: str,
    seed: int,
    out_dir: Path,
    task_dir: Path,
    fixed: ModuleType,
    hidden: Mapping[str, str],
    *,
    visible: Mapping[str, dict] | None = None,
) -> KitResult:
    """Read ``out_dir/result.json`` for ``setting``. ``fixed`` is the task's fixed module: its
    ``SETTINGS`` hold the visible settings' specs (unless ``visible`` is given) and its
    ``PUBLIC_KEY`` the test-time instances' key. A hidden setting's spec comes from
    ``task_dir/hidden/<file>`` (``hidden`` maps its label to the file, whose name is the
    setting's name in the record); the final instances' key from
    ``task_dir/hidden/instance_key.txt``."""
    out_dir, task_dir = Path(out_dir), Path(task_dir)
    visible = fixed.SETTINGS if visible is None else visible
    if setting in visible:
        name, spec = setting, visible[setting]
    elif setting in hidden:
        name = hidden[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
    else:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted((*visible, *hidden))}")
    path = out_dir / "result.json"
    if not path.is_file():
        raise FileNotFoundError("no result.json: the run failed (see the log)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"result.json is not valid JSON: {e}") from e
    if not isinstance(record, dict):
        raise ValueError("result.json must hold an object")
    if record.get("error"):  # the harness failed the run and says why
        raise ValueError(f"the run failed: {record['error']}")
    if (record.get("setting"), record.get("seed"), record.get("spec")) != (name, seed, spec):
        raise ValueError(
            f"result.json is for {record.get('setting')!r} seed {record.get('seed')}, "
            f"expected {name!r} seed {seed} with spec {spec}"
        )
    if record.get("instance") == "public":
        key = fixed.PUBLIC_KEY
    elif record.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {record.get('instance')!r}")
    return KitResult(name, spec, record, key, out_dir)
