"""Where a run's results go, and the one writer of them, which runs after every child exited;
the budget check's verdict (task.yaml's ``budget_check``) is one such result."""

from __future__ import annotations

import json
import os
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path

from .child import RunFailure, close_all


def out_dir_from_env() -> Path:
    """The run's output folder (``MLSBENCH_OUT``; ``out`` in a run by hand), removed from the
    environment so that no child learns where results go."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")


def write_artifacts(
    out_dir: Path,
    record: dict,
    arrays: dict | None = None,
    record_name: str = "result.json",
    npz: dict | None = None,
) -> None:
    """End every child still running, empty ``out_dir`` (nothing a child left there survives),
    then write ``record`` as JSON, each array as ``<name>.npy`` and each ``npz`` entry
    ({name: {key: array}}) as ``<name>.npz`` (no pickles: an object array is a ValueError)."""
    close_all()
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if arrays or npz:
        import numpy as np

    for name, value in (arrays or {}).items():
        if value is not None:
            np.save(out_dir / f"{name}.npy", np.asarray(value), allow_pickle=False)
    for name, members in (npz or {}).items():
        if members is not None:
            members = {key: np.asarray(value) for key, value in members.items()}
            if any(a.dtype.hasobject for a in members.values()):
                raise ValueError(f"{name}.npz: object arrays would be pickled")
            np.savez(out_dir / f"{name}.npz", **members)
    (out_dir / record_name).write_text(json.dumps(record, indent=1))


def write_budget_verdict(out_dir: Path, label: str, measure: Callable[[], dict]) -> int:
    """Write the budget check's verdict, ``budget_check.json`` = ``measure()`` (a dict with
    ``ok`` and ``message``), after every child has exited; returns the harness's exit status, 0.
    A model that cannot be measured, or any other error, is a refusal with its reason: the
    environment reads only this file, and no file would refuse with nothing but a log tail."""
    try:
        verdict = measure()
    except RunFailure as e:
        verdict = {"ok": False, "message": f"the model could not be measured: {e}"}
    except Exception:  # a malformed frame from the child, or a harness bug
        verdict = {"ok": False, "message": "harness error:\n" + traceback.format_exc()[-2000:]}
    write_artifacts(out_dir, verdict, record_name="budget_check.json")
    print(f"[{label}] budget check: {'ok' if verdict['ok'] else 'REFUSED'}: {verdict['message']}")
    return 0
