"""Where a run's results go, and the one writer of them, which runs after every child exited."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .child import close_all


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
