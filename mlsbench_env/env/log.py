"""The trajectory log: JSON lines appended and flushed per step, valid after a crash.

Line 1 is the header (format version, package version, task id/version/hashes, config, seed,
git revision, protocol preset; a header without ``protocol`` is from before presets:
``default``); then one record per step; the last record (``"type": "end"``) carries the exit
status, the score and the tamper report. A killed run leaves every line written so far.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlsbench_env.env.state import EpisodeState

FORMAT_VERSION = 1


@cache
def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


@cache
def versions() -> dict[str, str]:
    import gymnasium
    import numpy

    from mlsbench_env import __version__

    return {
        "mlsbench_env": __version__,
        "python": sys.version.split()[0],
        "gymnasium": gymnasium.__version__,
        "numpy": numpy.__version__,
    }


class TrajectoryLog:
    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")  # noqa: SIM115 (kept open per episode)
        self.write(
            {
                "type": "header",
                "format_version": FORMAT_VERSION,
                "time": time.time(),
                "versions": versions(),
                "git_revision": git_revision(),
                **header,
            }
        )

    def write(self, record: dict[str, Any]) -> None:
        if self._f.closed:
            return
        self._f.write(json.dumps(record, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    @property
    def closed(self) -> bool:
        return self._f.closed

    def offset(self) -> int:
        return self._f.tell()

    def reopen(self) -> None:
        """Append again after ``close`` (a restored episode goes on in the same file)."""
        if self._f.closed:
            self._f = self.path.open("a", encoding="utf-8")  # noqa: SIM115


def end_record(ep: EpisodeState, reward: float, status: str, info: dict) -> dict:
    """The episode's last record: how it ended, its score, the tamper report, its code."""
    ws = ep.workspace
    return {
        "type": "end",
        "status": status,
        "reward": reward,
        "score": info.get("score"),
        "vanilla_score": info.get("vanilla_score"),
        # under a protocol whose submit selects a test: the test whose result is final
        "selected_test": info.get("selected_test"),
        "steps": ep.step_count,
        "tests_used": len(ep.tests),
        "tamper_report": ep.events,
        "diff": ws.diff(),
        # what `mlsbench rescore` re-evaluates on today's scaffold: the editable
        # regions ([file, index, text]) of the current code and of each test's code
        "seeds": info.get("seeds"),
        "code": {
            "regions": [[*k, t] for k, t in ws.region_texts().items()],
            "created": ws.created_files(),
        },
        "test_code": [
            {
                "n": t["n"],
                "regions": [[*k, x] for k, x in t["regions"].items()],
                "created": t["created"],
            }
            for t in ep.tests
        ],
    }


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record to a finished trajectory (an agent's closing totals)."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


def protocol_of(header: dict) -> str:
    """The protocol preset a trajectory ran under (``default`` for old trajectories)."""
    return header.get("protocol") or (header.get("config") or {}).get("protocol") or "default"


def read_log(path: Path) -> list[dict]:
    """Every complete record (a torn last line from a killed run is skipped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out
