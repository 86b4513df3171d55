"""Experiments that run while the agent keeps working, and the limit on experiments at once.

- ``Slots``: a counting semaphore shared by every process on the machine that uses the same
  folder. Each slot is a file held with ``flock``; the kernel frees it when its holder exits,
  so a killed trainer or worker never leaks a slot. Waiters poll (a few ms to 0.1 s), which is
  nothing next to an experiment's seconds. ``EnvConfig.max_experiments`` turns it on for the
  commands an episode runs (test settings, shell commands, final evaluations).
- ``TestJob``: a background ``test`` (``{"tool": "test", "args": {"wait": false}}``). It runs on
  a copy of the workspace taken when it starts (later edits do not leak into it), in a sandbox
  of its own, one visible setting after another, in a thread. Only the episode's thread touches
  the budget: it bills what a job has used (``used_s``) whenever it looks at its jobs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlsbench_env.errors import JobCancelled

SLOTS_DIR_ENV = "MLSBENCH_SLOTS_DIR"


def default_slots_dir() -> Path:
    return Path(os.environ.get(SLOTS_DIR_ENV) or Path(tempfile.gettempdir()) / "mlsbench-slots")


class Slots:
    """At most ``limit`` holders at once among all processes using ``folder``."""

    def __init__(self, limit: int, folder: str | Path | None = None, name: str = "experiments"):
        if limit < 1:
            raise ValueError(f"a slot limit must be >= 1, got {limit}")
        self.limit = limit
        self.folder = Path(folder) if folder else default_slots_dir()
        self.name = name

    def _path(self, i: int) -> Path:
        return self.folder / f"{self.name}-{i}.lock"

    def _try(self) -> int | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for i in range(self.limit):
            fd = os.open(self._path(i), os.O_RDONLY | os.O_CREAT, 0o666)  # flock: read is enough
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
        return None

    @contextlib.contextmanager
    def hold(self, cancelled: threading.Event | None = None) -> Iterator[float]:
        """Wait for a free slot and hold it for the ``with`` body; yields the seconds waited.
        Raises ``JobCancelled`` if ``cancelled`` is set while waiting."""
        started, delay = time.monotonic(), 0.005
        fd = self._try()
        while fd is None:
            if cancelled is not None and cancelled.wait(delay):
                raise JobCancelled("cancelled while waiting for an experiment slot")
            if cancelled is None:
                time.sleep(delay)
            delay = min(delay * 2, 0.1)
            fd = self._try()
        try:
            yield time.monotonic() - started
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def busy(self) -> int:
        """How many slots are held right now (by anyone)."""
        n = 0
        for i in range(self.limit):
            if not self._path(i).exists():
                continue
            fd = os.open(self._path(i), os.O_RDONLY)  # flock needs no write access
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                n += 1
            finally:
                os.close(fd)
        return n


@dataclass
class TestJob:
    """One background test. ``runs`` fills as settings finish; ``state`` ends as ``done``,
    ``cancelled`` or ``failed``. The episode's thread reads it; only the job's thread writes."""

    id: int
    test: int
    settings: list[str]
    regions: dict
    created: dict[str, str]
    state: str = "running"
    runs: list = field(default_factory=list)
    used_s: float = 0.0  # compute used so far (finished settings)
    billed_s: float = 0.0  # how much of used_s the episode has charged to its budget
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None
    shown: bool = False  # its result was shown to the agent
    result: dict | None = None  # {"text", "info"} once the episode has scored it
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _sandbox: Any = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    # ------------------------------------------------------------------ running
    def start(
        self,
        root: Path,
        make_sandbox: Callable[[Path], Any],
        run_one: Callable[[Any, str, Path], Any],
        budget_left: Callable[[], float],
        slots: Slots | None,
    ) -> None:
        """Run ``run_one(sandbox, label, root)`` for each setting in a thread; ``root`` holds
        the workspace copy (``root/workspace``) and is removed when the job ends."""

        def work():
            try:
                self._sandbox = make_sandbox(root)
                for label in self.settings:
                    if self._cancel.is_set():
                        raise JobCancelled()
                    if budget_left() - (self.used_s - self.billed_s) <= 0:
                        self.error = "the compute budget ran out"
                        break
                    hold = slots.hold(self._cancel) if slots else contextlib.nullcontext()
                    with hold:
                        run = run_one(self._sandbox, label, root)
                    if self._cancel.is_set():
                        raise JobCancelled()
                    self.runs.append(run)
                    self.used_s += run.compute_s
                self.state = "done"
            except JobCancelled:
                self.state = "cancelled"
            except Exception as e:  # a dead sandbox after cancel, or an env bug: say which
                if self._cancel.is_set():
                    self.state = "cancelled"
                else:
                    self.state, self.error = "failed", f"{type(e).__name__}: {e}"
            finally:
                self.finished = time.monotonic()
                sandbox, self._sandbox = self._sandbox, None
                if sandbox is not None:
                    with contextlib.suppress(Exception):
                        sandbox.close()
                shutil.rmtree(root, ignore_errors=True)
                self._done.set()

        self._thread = threading.Thread(target=work, name=f"mlsbench-job-{self.id}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the job: a running command is killed with its sandbox."""
        if self._done.is_set():
            return
        self._cancel.set()
        sandbox = self._sandbox
        if sandbox is not None:
            with contextlib.suppress(Exception):
                sandbox.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    # ------------------------------------------------------------------ reporting
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def status(self) -> dict:
        """Job status for ``info`` (no wall-clock values: those go in the observation only)."""
        out = {
            "id": self.id,
            "test": self.test,
            "state": "running" if self.running else self.state,
            "settings_done": len(self.runs),
            "settings": len(self.settings),
        }
        if self.result is not None:
            out["score"] = self.result["info"].get("score")
        if self.error:
            out["error"] = self.error
        return out

    def line(self) -> str:
        s = self.status()
        head = f"- job {self.id} (test {self.test}): "
        if s["state"] == "running":
            return head + (
                f"running for {self.elapsed():.0f} s; {s['settings_done']}/{s['settings']} "
                "settings done"
            )
        tail = f" ({self.error})" if self.error else ""
        if s["state"] == "done" and self.result is not None:
            score = self.result["info"].get("score")
            shown = "n/a" if score is None else f"{score:.1f}"
            return head + f"done in {self.elapsed():.0f} s; score {shown}{tail}"
        return head + f"{s['state']} after {self.elapsed():.0f} s{tail}"

    def frozen(self) -> TestJob:
        """A copy of a finished job without its thread (episode snapshots keep these)."""
        if self.running:
            raise RuntimeError("a running job cannot be copied")
        copy = replace(
            self,
            settings=list(self.settings),
            regions=dict(self.regions),
            created=dict(self.created),
            runs=list(self.runs),
            _cancel=threading.Event(),
            _thread=None,
            _sandbox=None,
            _done=threading.Event(),
        )
        copy._done.set()
        return copy

    def __deepcopy__(self, memo) -> TestJob:  # episode snapshots deep-copy their state
        return self.frozen()
