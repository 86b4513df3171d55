"""One command of the sandbox: a fresh ``bash -c`` in its own session, with rlimits, output
captured and capped, the whole process group killed when it ends or times out; and the request
lines it comes from. Part of the in-sandbox executor (standard library only)."""

from __future__ import annotations

import os
import select
import time

SIGKILL, SIGXCPU, SIGXFSZ = 9, 24, 25


class Requests:
    """Request lines from the host on fd 0; ``eof`` once the host has gone away."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.eof = False

    def fill(self) -> None:
        data = os.read(0, 65536)
        self.buf += data
        self.eof = not data

    def next_line(self) -> str | None:
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self.fill()
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return line.decode()


REQUESTS = Requests()


def _limits_prefix(limits: dict) -> str:
    parts = []
    if limits.get("memory_mb"):
        parts.append(f"ulimit -v {int(limits['memory_mb']) * 1024}")
    if limits.get("processes"):
        parts.append(f"ulimit -u {int(limits['processes'])}")
    if limits.get("file_size_mb"):
        parts.append(f"ulimit -f {int(limits['file_size_mb']) * 1024}")
    if limits.get("cpu_s"):
        parts.append(f"ulimit -t {int(limits['cpu_s'])}")
    return " && ".join(parts)


class _Capped:
    """Keeps the head and the tail of a stream within max_bytes; counts what it drops."""

    def __init__(self, max_bytes: int):
        self.half = max(max_bytes // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > self.half:
            cut = len(self.tail) - self.half
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        mid = f"\n[... {self.dropped} bytes of output omitted ...]\n" if self.dropped else ""
        return (
            bytes(self.head).decode(errors="replace")
            + mid
            + bytes(self.tail).decode(errors="replace")
        )


def kill_all(pgid: int) -> None:
    try:
        os.killpg(pgid, SIGKILL)
    except ProcessLookupError:
        pass
    if os.getpid() == 1:  # PID 1 of a namespace: nothing the command started may outlive it
        try:
            os.kill(-1, SIGKILL)
        except ProcessLookupError:
            pass


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _spawn(req: dict, as_other_user: bool) -> tuple[int, int]:
    """Start the command; its pid and the read end of its output."""
    import json

    limits = _limits_prefix(req.get("limits") or {})
    # One bash: enter the folder as the command's user (a container's root may not), set the
    # limits, then run the command in the same shell.
    script = f"cd -- {_quote(req['cwd'])} || exit 126\n"
    script += f"{limits} || exit 126\n{req['cmd']}" if limits else req["cmd"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": req["cwd"],
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        **(req.get("env") or {}),
    }
    secrets_fd = None
    if req.get("secrets"):  # the secrets channel: the command's process alone inherits it
        secrets_fd = os.memfd_create("mlsbench-secrets")
        os.write(secrets_fd, json.dumps(req["secrets"]).encode())
        os.lseek(secrets_fd, 0, os.SEEK_SET)
        os.set_inheritable(secrets_fd, True)
        env["MLSBENCH_SECRETS_FD"] = str(secrets_fd)
    fd, write_end = os.pipe()  # both close-on-exec; the child gets the write end as 1 and 2
    try:
        pid = os.posix_spawn(
            "/bin/bash",
            ["/bin/bash", "-c", script],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ],
            setsid=True,
            resetids=as_other_user,
        )
    finally:
        os.close(write_end)
        if secrets_fd is not None:
            os.close(secrets_fd)
    return pid, fd


def run(req: dict, as_other_user: bool) -> dict:
    """Run one request's command to its end (or its timeout) and say what it did.
    ``as_other_user``: the executor holds the commands' uid as its real one (``become_spawner``)."""
    started = time.perf_counter()
    pid, fd = _spawn(req, as_other_user)
    out = _Capped(int(req.get("max_output", 1 << 20)))
    deadline = started + float(req.get("timeout", 60))
    status, usage, timed_out, exited_at = None, None, False, None
    while True:
        now = time.perf_counter()
        if now >= deadline:
            timed_out = True
            break
        if exited_at is not None and now - exited_at > 0.2:
            break  # the command exited; a background child still holds the pipe
        watch = [fd] if REQUESTS.eof else [fd, 0]
        ready, _, _ = select.select(watch, [], [], min(deadline - now, 0.05))
        if 0 in ready:
            REQUESTS.fill()  # the host sends nothing while a command runs, so this is EOF
            if REQUESTS.eof:  # the host is gone: nothing it started may outlive it
                kill_all(pid)
                os._exit(0)
        if fd in ready:
            data = os.read(fd, 65536)
            if not data:
                break
            out.add(data)
        if status is None:
            done, st, ru = os.wait4(pid, os.WNOHANG)
            if done:
                status, usage, exited_at = st, ru, time.perf_counter()
    while status is None and not timed_out:  # output closed first: let the command finish
        done, st, ru = os.wait4(pid, os.WNOHANG)
        if done:
            status, usage = st, ru
        elif time.perf_counter() >= deadline:
            timed_out = True
        else:
            time.sleep(0.0005)
    kill_all(pid)
    if status is None:
        _, status, usage = os.wait4(pid, 0)
    while os.getpid() == 1:  # reap the orphans we just killed (they were re-parented to us)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    rc = os.waitstatus_to_exitcode(status)
    os.close(fd)
    return {
        "rc": rc,
        "output": out.text(),
        "dropped_bytes": out.dropped,
        "timed_out": timed_out,
        "killed": _why_killed(rc, timed_out, req.get("timeout")),
        "wall_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime if usage else 0.0,
        "max_rss_mb": (usage.ru_maxrss / 1024) if usage else 0.0,
    }


def _why_killed(rc: int, timed_out: bool, timeout) -> str | None:
    if timed_out:
        return f"timeout after {timeout} s"
    return {
        -SIGKILL: "killed (SIGKILL: memory or CPU-time limit, or out of memory)",
        -SIGXCPU: "CPU-time limit exceeded",
        -SIGXFSZ: "file-size limit exceeded",
    }.get(rc)
