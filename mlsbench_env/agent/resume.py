"""Reading a saved run back for ``mlsbench run --resume``."""

from __future__ import annotations

from pathlib import Path

from mlsbench_env.env.log import read_log
from mlsbench_env.errors import MLSBenchError


def saved_run(run_dir) -> tuple[dict, dict | None]:
    """(header, agent config dict or None) of a saved run, for ``--resume``."""
    path = Path(run_dir) / "trajectory.jsonl"
    if not path.is_file():
        raise MLSBenchError(f"{run_dir}: not a run folder (no trajectory.jsonl in it)")
    records = read_log(path)
    if not records or records[0].get("type") != "header":
        raise MLSBenchError(f"{path}: no header record; cannot resume from it")
    agent = next((r["config"] for r in records if r.get("type") == "agent"), None)
    return records[0], agent
