"""Agent code in a process of its own, behind a pipe of raw byte frames.

The parent (the trusted harness) starts a ``Child`` on a function of a fixed module; the child
imports that module (trusted, with the task folder readable), then drops its privileges
(``privilege.drop``), installs the guard and only then calls the function, which imports the
agent's module. Parent and child exchange frames of bytes, the first byte naming the kind; the
parent never unpickles anything the child sent. Two kinds are the kit's: ``X`` + text (the child
failed; the text says why) and ``V`` + text (the guard caught a breach). Everything a harness
counts (evaluations, queries, denoiser calls, model steps) it counts in the parent.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import Connection

from . import guard, privilege

CALL_TIMEOUT_S = 600.0
TEXT_FRAME_MAX = (
    1 << 16
)  # an X or V frame: a traceback or a violation, read whatever the caller expects
START_TIMEOUT_S = 120.0  # importing the target module (torch, a model) before the drop
REQUIRE_ISOLATION = "MLSBENCH_REQUIRE_ISOLATION"  # "1": refuse to run agent code without Landlock
_live: list[Child] = []
_warned: list[str] = []
# glibc gives freed blocks above 128 KiB back to the OS (its mmap and trim thresholds); a harness
# that allocates and frees a few MB of tensors every step then page-faults the same memory back
# every step: a fifth of a torch harness's CPU (rl-value-visual-control, measured). Higher
# thresholds keep that memory in the process. Allocation only: no result changes.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
    "MALLOC_TOP_PAD_": str(64 << 20),
}
MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_TOP_PAD_": -2, "MALLOC_MMAP_THRESHOLD_": -3}


def keep_freed_memory() -> None:
    """``MALLOC_ENV``'s thresholds for this process (the parent), through glibc's mallopt."""
    try:
        libc = ctypes.CDLL(None)
        for name, value in MALLOC_ENV.items():
            libc.mallopt(MALLOPT[name], int(value))
    except (OSError, AttributeError):  # not glibc: its own allocator's defaults
        pass


class RunFailure(Exception):
    """The run fails with this message (a rule broken, a budget overrun, a crash, a timeout)."""


class Child:
    """A started child process running ``target`` ("module:function") as
    ``function(conn, *args)``, with read access to the ``may_read`` files of the task folder
    only (never ``deny_read``, nor the data sets packages ship: ``privilege.packaged_data``).
    A ``before_drop()`` function of the module, if it has one, runs before the privilege
    drop (a warm-up that writes caches or sets environment variables). ``isolation`` says what
    the privilege drop reached ("landlock", "uid", "nocaps" or "none")."""

    def __init__(
        self,
        target: str,
        *args,
        may_read: tuple[str, ...] = (),
        deny_read: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout_s: float = CALL_TIMEOUT_S,
        name: str = "agent code",
    ):
        self.name, self.timeout_s = name, timeout_s
        self.scratch = tempfile.mkdtemp(prefix="scratch-")
        mine, theirs = socket.socketpair()
        self.conn = Connection(mine.detach())
        config = dict(
            target=target,
            may_read=[os.path.abspath(p) for p in may_read],
            deny_read=[os.path.abspath(p) for p in (*privilege.packaged_data(), *deny_read)],
            task_dir=os.getcwd(),
            scratch=self.scratch,
            sys_path=[p for p in sys.path if p],
            args=args,
            require=os.environ.get(REQUIRE_ISOLATION) == "1",
        )
        keep_freed_memory()
        child_env = {
            **MALLOC_ENV,
            **os.environ,
            **(env or {}),
            "TMPDIR": self.scratch,
            "HOME": self.scratch,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for key in ("MLSBENCH_OUT", "MLSBENCH_SECRETS_FD"):
            child_env.pop(key, None)
        package = __name__.rpartition(".")[0]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for _ in range(package.count(".")):
            root = os.path.dirname(root)
        boot = f"import sys; sys.path.insert(0, {root!r}); from {package}.child import main; main()"
        fd = theirs.fileno()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", boot, str(fd)],
            pass_fds=(fd,),
            env=child_env,
            start_new_session=True,
        )
        theirs.close()
        self.pid = self.proc.pid
        _live.append(self)
        self.conn.send_bytes(pickle.dumps(config))
        hello = self.recv(maxlength=4096, timeout_s=max(self.timeout_s, START_TIMEOUT_S))
        if hello[:1] != b"H":
            raise RunFailure(f"the {name} process did not start (protocol: {hello[:20]!r})")
        self.isolation = hello[1:].decode()
        if self.isolation != "landlock" and self.isolation not in _warned:
            _warned.append(self.isolation)
            print(
                f"[taskkit] agent code runs with isolation {self.isolation!r}: the kernel "
                "offers no Landlock here, so its file access is limited by the sandbox only",
                file=sys.stderr,
                flush=True,
            )

    # ------------------------------------------------------------------ frames
    def send(self, kind: bytes, payload: bytes = b"") -> None:
        try:
            self.conn.send_bytes(kind + payload if payload else kind)
        except OSError:
            if self.conn.poll(1.0):  # it left the reason it ended: that is the failure
                self.recv()
            raise RunFailure(self._gone("before it read a request")) from None

    def recv(self, maxlength: int = 1 << 20, timeout_s: float | None = None) -> bytes:
        """The child's next frame (kind byte included), at most ``maxlength`` bytes; the kit's
        ``X`` and ``V`` frames, a timeout, an oversized frame and an exit become RunFailure
        with the reason."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not self.conn.poll(0.5):
            if self.proc.poll() is not None and not self.conn.poll(0.05):
                raise RunFailure(self._gone("without answering"))
            if time.monotonic() > deadline:
                self.close(grace_s=0)  # nothing more will come of it
                raise RunFailure(
                    f"the {self.name} process did not answer within "
                    f"{self.timeout_s if timeout_s is None else timeout_s:.0f} s"
                )
        try:
            # the kit's own frames (a traceback, a violation) always get through
            msg = self.conn.recv_bytes(max(maxlength, TEXT_FRAME_MAX))
        except EOFError:
            raise RunFailure(self._gone("without answering")) from None
        except OSError as e:
            raise RunFailure(
                f"the {self.name} process sent a message over {maxlength} bytes ({e})"
            ) from None
        if msg[:1] == b"X":
            raise RunFailure(msg[1:].decode("utf-8", "replace"))
        if msg[:1] == b"V":
            raise RunFailure("policy violation: " + msg[1:].decode("utf-8", "replace"))
        if len(msg) > maxlength:
            raise RunFailure(
                f"the {self.name} process sent a message over {maxlength} bytes ({len(msg)})"
            )
        return msg

    def expect(
        self,
        kind: bytes,
        maxlength: int = 1 << 20,
        size: int | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """The next frame, which must be of ``kind`` (and ``size`` bytes of payload, if given);
        returns its payload."""
        msg = self.recv((maxlength if size is None else size) + 1, timeout_s)
        if msg[:1] != kind or (size is not None and len(msg) != size + 1):
            got = f"{msg[:1]!r} with {len(msg) - 1} bytes"
            want = f"{kind!r}" + ("" if size is None else f" with {size} bytes")
            raise RunFailure(f"protocol error: the {self.name} process sent {got}, expected {want}")
        return msg[1:]

    def _gone(self, when: str) -> str:
        code = self.proc.wait()
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the {self.name} process {how} {when}"

    # ------------------------------------------------------------------ measurements
    def cpu_ns(self) -> int:
        """CPU time the child has used, all its threads, read from outside it."""
        return time.clock_gettime_ns(((~self.pid) << 3) | 2)

    def reset_peak(self) -> None:
        """Set the child's peak-memory mark (VmHWM) to its current use, for the next call."""
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM, RssAnon (bytes) and Threads of the child, from /proc."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon"):
                    out[key] = int(val.split()[0]) * 1024
                elif key == "Threads":
                    out[key] = int(val)
        return out

    # ------------------------------------------------------------------ end
    def close(self, grace_s: float = 10.0) -> int:
        """End the child and everything it started; returns its exit code."""
        try:
            self.conn.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            code = None
        try:  # what it started (threads die with it; processes it spawned do not)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if code is None:
            code = self.proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self in _live:
            _live.remove(self)
        return code

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def close_all() -> None:
    """End every child still running (before artifacts are written)."""
    for child in list(_live):
        child.close(grace_s=1.0)


def send_frame(conn, kind: bytes, buf) -> None:
    """From the child: a frame of ``kind`` whose payload is ``buf`` (any buffer: a numpy
    array's memory) without copying it into one bytes object first, so a large output does not
    count twice in the child's memory. The parent reads it as one frame."""
    view = memoryview(buf).cast("B")
    conn._send(struct.pack("!i", len(view) + 1) + kind)  # Connection's own framing, in two writes
    conn._send(view)


def ask_parent(conn, head: bytes, x, shape: tuple, what: str):
    """From the child: send ``head`` and ``x`` (float64, exactly ``shape``: the whole batch) to
    the parent and return its answer, an array of the same shape (frame ``O``); any other frame
    is the parent's refusal and raises RuntimeError with its text."""
    import numpy as np

    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if x.shape != tuple(shape):
        raise ValueError(f"{what} must have shape {tuple(shape)} (the whole batch), got {x.shape}")
    conn.send_bytes(head + x.tobytes())
    reply = conn.recv_bytes()
    if reply[:1] != b"O":
        raise RuntimeError(
            f"{what} refused by the harness: " + reply[1:].decode("utf-8", "replace")
        )
    return np.frombuffer(reply, dtype=np.float64, offset=1).reshape(shape).copy()


def send_failure(conn, exc: BaseException) -> None:
    """From the child: report why it failed (a RunFailure's message, else the traceback)."""
    text = str(exc) if isinstance(exc, RunFailure) else traceback.format_exc()[-4000:]
    try:
        conn.send_bytes(b"X" + text.encode("utf-8", "replace"))
    except OSError:
        pass


def main() -> None:
    """The child process: import the target (trusted), drop privileges, guard, run."""
    conn = Connection(int(sys.argv[-1]))
    config = pickle.loads(conn.recv_bytes())  # from the trusted parent
    sys.path[:] = config["sys_path"]
    module, _, function = config["target"].partition(":")
    try:
        fixed = __import__(module, fromlist=[function])
        target = getattr(fixed, function)
        if hasattr(fixed, "before_drop"):  # warm-ups that need what the drop takes away
            fixed.before_drop()
        # its own code and every module of the task folder already imported stay readable:
        # tracebacks quote them, and their code is in this process anyway
        task_dir = os.path.realpath(config["task_dir"]) + os.sep
        files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
        imported = [
            f for f in files if isinstance(f, str) and os.path.realpath(f).startswith(task_dir)
        ]
        may_read = [
            *config["may_read"],
            os.path.dirname(os.path.abspath(__file__)),
            *imported,
        ]
        level = privilege.drop(
            may_read, [config["scratch"]], [config["task_dir"]], config["deny_read"]
        )
        if config["require"] and level != "landlock":
            raise RunFailure(
                f"agent code would run with isolation {level!r}, and "
                f"{REQUIRE_ISOLATION}=1 requires Landlock"
            )
        os.chdir(config["scratch"])
        sys.dont_write_bytecode = True
        guard.install(conn, config["task_dir"], may_read, config["scratch"], config["deny_read"])
        conn.send_bytes(b"H" + level.encode())
        target(conn, *config["args"])
    except BaseException as e:
        send_failure(conn, e)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
