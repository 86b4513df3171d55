"""The terminal display of a running matrix: a ``rich.progress.Progress`` bar of settled cells
(done, finished before, failed) with running, failed and retried counts, elapsed time, ETA and
cost, under the last few finished cells. ``update`` takes the driver's events (``run_eval``'s
``on_event``); the object is a rich renderable for ``rich.live.Live``, and ``line`` is the same
in one line of text for logs that are not a terminal.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from rich.console import Group
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from mlsbench_env.scale.matrix import Event

# rich estimates speed from the samples of this window (30 s by default); a cell takes minutes,
# so keep every sample: the ETA is cells left / cells settled per second since the first start
SPEED_WINDOW_S = 7 * 24 * 3600.0


class MatrixProgress:
    """Live counts of a matrix: cells settled / total, running, failed, retried, ETA, cost."""

    def __init__(self, total: int, workers: int):
        self.total, self.workers = total, workers
        self.done = self.failed = self.skipped = self.retries = 0
        self.running: set[str] = set()
        self.started = False
        self.cost = 0.0
        self.last: deque[str] = deque(maxlen=6)
        self.progress = Progress(
            TextColumn("[bold]cells"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[running]} running, {task.fields[failed]} failed, "
                "{task.fields[retries]} retried"
            ),
            TextColumn("| elapsed"),
            TimeElapsedColumn(),
            TextColumn("| ETA"),
            TimeRemainingColumn(),
            TextColumn("| cost ${task.fields[cost]:.2f}"),
            speed_estimate_period=SPEED_WINDOW_S,
        )
        self.task = self.progress.add_task("matrix", total=total, **self._fields())

    def _fields(self) -> dict:
        return {
            "running": len(self.running),
            "failed": self.failed,
            "retries": self.retries,
            "cost": self.cost,
        }

    def update(self, e: Event) -> str | None:
        """Apply an event; returns a line worth printing (a finished or failed cell)."""
        line, settled = None, 0
        cell, row = e.cell, e.row or {}
        if cell is None:  # a tick: the clock moves on
            pass
        elif e.kind == "skip":
            self.skipped += 1
            settled = 1
        elif e.kind == "start":
            if not self.started:
                # the clock and the speed samples start with the first cell run, so the cells
                # finished before (skips, settled at once) do not count as speed
                self.progress.reset(self.task, completed=self.skipped, **self._fields())
                self.progress.advance(self.task, 0)
                self.started = True
            self.running.add(cell.key)
        elif e.kind in ("done", "retry", "failed"):
            self.running.discard(cell.key)
            first = (e.error or "").splitlines()[0] if e.error else ""
            if e.kind == "done":
                self.done += 1
                self.cost += row.get("cost_usd") or 0.0
                s = row.get("score")
                line = f"done    {cell.describe()}: score {'n/a' if s is None else f'{s:.1f}'}"
            elif e.kind == "retry":
                self.retries += 1
                line = f"retry   {cell.describe()} (attempt {e.attempt} failed: {first})"
            else:
                self.failed += 1
                line = f"FAILED  {cell.describe()}: {first}"
            settled = int(e.kind != "retry")
            self.last.append(line)
        if settled:
            self.progress.advance(self.task, settled)
        self.progress.update(self.task, **self._fields())
        return line

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate cells have settled so far (None before the first)."""
        return self.progress.tasks[0].time_remaining

    def line(self) -> str:
        task, eta = self.progress.tasks[0], self.eta_s
        return (
            f"{self.done + self.skipped}/{self.total} done ({self.skipped} from before), "
            f"{len(self.running)} running, {self.failed} failed, {self.retries} retried | "
            f"elapsed {_dur(task.elapsed or 0.0)} | ETA "
            f"{'?' if eta is None else _dur(eta)} | cost ${self.cost:.2f}"
        )

    def __rich__(self) -> Group:
        return Group(*[Text(x, style="dim") for x in self.last], self.progress)


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
