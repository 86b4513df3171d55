"""The second layer in agent code's process: an audit hook that names what agent code tried.

The boundary is ``privilege.drop`` (the kernel refuses); this hook runs first and turns the
attempt into a message the parent reports ("agent code opened ... for writing"), then ends the
process. It blocks what no agent code of a task needs: files of the task folder beyond those it
may import, writes outside its scratch folder, processes, native libraries, sockets, signals
(its environment is its own: setting a variable is allowed, torch does).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

BLOCKED_EVENTS = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.pidfd",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.cdata",
    "ctypes.call_function",
    "socket.",
    "os.chdir",
    "os.symlink",
    "os.link",
    "sys.setprofile",
    "sys.settrace",
    "sys.addaudithook",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITABLE = ("/dev/null", "/dev/zero")


def install(
    conn, task_dir: str, may_read: list[str], scratch: str, deny_read: Sequence[str] = ()
) -> None:
    """From now on, report and end the process on anything of BLOCKED_EVENTS, on opening a file
    of ``task_dir`` other than ``may_read`` or one under ``deny_read``, on opening another
    process's /proc entries and on writing outside ``scratch``. Everything the hook calls is
    bound here: agent code that patches ``os.path`` or ``builtins`` does not change it."""
    realpath, fsdecode, getpid, _exit = os.path.realpath, os.fsdecode, os.getpid, os._exit
    sep, writable = os.sep, _WRITABLE
    task_dir = realpath(task_dir) + sep
    scratch = realpath(scratch) + sep
    allowed = tuple(realpath(p) for p in may_read)
    denied = tuple(realpath(p) for p in deny_read)
    send = conn.send_bytes
    busy = []

    def breach(what: str) -> None:
        busy.append(True)
        try:
            send(b"V" + what.encode("utf-8", "replace")[:2000])
        finally:
            _exit(3)

    def under(p: str, roots: tuple) -> bool:
        for root in roots:
            if p == root or p.startswith(root + sep):
                return True
        return False

    def hook(event: str, args: tuple) -> None:
        if busy:
            return
        if event == "open":
            path, mode, flags = args
            if path is None or type(path) is int:
                return
            p = realpath(fsdecode(path))
            writes = (
                type(mode) is str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            ) or (mode is None and type(flags) is int and flags & _WRITE_FLAGS)
            if writes and not (p + sep).startswith(scratch) and p not in writable:
                breach(
                    f"agent code opened {p!r} for writing: it may write only in its "
                    "scratch folder (its working folder)"
                )
            pid = p.split("/")[2] if p.startswith("/proc/") else ""
            if pid.isdigit() and int(pid) != getpid():
                breach(f"agent code opened {p!r}: other processes are off limits")
            if under(p, denied):
                breach(f"agent code opened {p!r}: the task keeps this data from agent code")
            if p.startswith(task_dir) and not p.endswith(".pyc") and not under(p, allowed):
                breach(
                    f"agent code opened {p!r}: it may read only the modules the task lets it import"
                )
        elif event.startswith(BLOCKED_EVENTS):
            breach(
                f"agent code raised the forbidden event {event!r}: processes, native "
                "libraries, sockets, signals and tracing are off limits"
            )

    sys.addaudithook(hook)
