"""The trusted command executor that lives inside a sandbox (standard library only).

Started once per sandbox (inside the namespaces of the `local` backend, or a container), it
reads one JSON request per line on stdin and answers one JSON line on stdout. Each command is a
fresh ``bash -c`` process in its own session, with rlimits, run as the sandbox user; output is
captured and capped; on timeout (or when the command exits) the whole process group is killed,
and when the executor is PID 1 of its namespace, every other process in it too. Keeping one
executor alive avoids paying namespace/container set-up per command.

Start-up config: the first line of stdin (JSON; never argv, so that `ps` inside shows no host
layout): {"view": {...}|null, "run_as": [uid, gid]|null}. ``view`` (``sandbox/view.py``) lists
what the sandbox's fresh root holds; the executor builds it, pivots into it and reports in its
ready line what of the host's interpreter is missing there. ``run_as`` keeps the executor root
and runs only the commands as that uid; without it the commands share the executor's uid and
the executor gives up every capability first. Either way the executor is not dumpable and sets
no_new_privs, so commands can neither read its /proc entries nor write its reply pipe.

A request may carry ``"secrets": {name: text}``: the command then inherits a memory file (not a
path; it never touches a disk or the workspace) holding their JSON, named by the descriptor
number in ``MLSBENCH_SECRETS_FD``. Nothing else gets it: not later commands, not the shell of
the episode; a harness reads it once at start and closes it (docs/writing-tasks.md).

Container mode (the `docker` backend) adds ``"attach": true``: after the ready line the executor
waits for one ``{"attach": {"bind": [[src, dst, read_only]...], "hide": [path...], "unmount":
[path...], "run_as": [uid, gid]}}`` line, builds the episode's mount view (a pooled container is
started before its episode exists), gives up CAP_SYS_ADMIN, answers ``{"attached": true}``, and
from then on runs every command as ``run_as`` while it stays root itself, so that commands cannot
reach its request channel (/proc/1/fd) or signal it. If the host goes away (stdin closes), even
in the middle of a command, the executor kills everything and exits.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import select
import sys
import time

# json loads after the ready line (importing it, and re with it, is most of the executor's
# start-up time): a reset waits for the ready line, not for it
SIGKILL, SIGXCPU, SIGXFSZ = 9, 24, 25

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
# flags a remount must keep (in a user namespace they are locked on mounts of the host)
KEEP_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096  # noatime, nodiratime, relatime
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
CAP_SYS_ADMIN, MNT_DETACH = 21, 2
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 4, 24, 28, 38
# SECBIT_NOROOT, its lock, SECBIT_NO_CAP_AMBIENT_RAISE, its lock: exec never grants capabilities
NO_ROOT_BITS = 0x01 | 0x02 | 0x40 | 0x80


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


def _read_only(path: str) -> None:
    kept = os.statvfs(path).f_flag & KEEP_FLAGS
    _mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | kept, None)


def _mount_point(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build_root(view: dict) -> None:
    """Pivot into a fresh root that holds only what ``view`` lists (``sandbox/view.py``):
    ``entries`` (bind, tmpfs, proc, link; parents first), then ``masks`` covered."""
    # Open every source before anything is covered; bind them through /proc/self/fd.
    sources = {}
    for e in view["entries"]:
        if e[0] == "bind" and os.path.exists(e[1]):
            sources[e[1]] = os.open(e[1], os.O_PATH | os.O_CLOEXEC)
    # The new root is a tmpfs over /tmp: a private mount namespace, the host's /tmp is untouched.
    new = "/tmp"
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for e in view["entries"]:
        kind, path = e[0], e[2] if e[0] == "bind" else e[1]
        target = new + path
        if kind == "bind":
            fd = sources.get(e[1])
            if fd is None:
                continue
            is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
            _mount_point(target, is_dir)
            _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None)
            if e[3]:
                _read_only(target)
        elif kind == "tmpfs":
            _mount_point(target, True)
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, e[2])
        elif kind == "proc":
            _mount_point(target, True)
            try:  # hidepid: commands see their own processes only, not the executor's
                _mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
            except OSError:  # a user namespace may not mount a new proc: keep the namespace's
                _mount("/proc", target, None, MS_BIND | MS_REC, None)
        elif kind == "link":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(e[2], target)
    for path in view.get("masks", []):
        if os.path.isdir(new + path):
            _mount("tmpfs", new + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    for fd in sources.values():
        os.close(fd)
    os.mkdir(new + "/.old")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], new.encode(), (new + "/.old").encode()):
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")
    os.chdir("/")
    if libc.umount2(b"/.old", MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount old root: {os.strerror(err)}")
    os.rmdir("/.old")
    _read_only("/")


def _open_to_others(path: str) -> bool:
    """Every folder on the way to ``path`` and ``path`` itself let other users in (the
    commands' uid has no group of the files)."""
    parts = os.path.realpath(path).split("/")
    for i in range(2, len(parts) + 1):
        if not os.stat("/".join(parts[:i])).st_mode & 0o001:
            return False
    return True


def missing_runtime(view: dict) -> list[str]:
    """What of the host's interpreter the commands cannot reach in the built root (nothing,
    when all is well): missing, or closed to the commands' uid under ``RUN_AS``."""
    paths = [view["python"], *view.get("interpreter", [])]
    return [
        p for p in paths if not os.path.exists(p) or (RUN_AS is not None and not _open_to_others(p))
    ]


def harden(keep_caps: bool) -> None:
    """Nothing a command starts may gain privileges or look into the executor (its /proc
    entries, its request and reply pipes). ``keep_caps``: the executor stays root to start
    commands as another uid; otherwise the commands share its uid and it gives up every
    capability, for itself and for whatever it execs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if keep_caps:
        return
    libc.prctl(PR_SET_SECUREBITS, NO_ROOT_BITS, 0, 0, 0)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # past the last capability: EINVAL, ignored
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


RUN_AS: tuple[int, int] | None = None  # commands' uid/gid when the executor stays root


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def drop_capability(cap: int) -> None:
    """Remove ``cap`` from this process's effective, permitted and inheritable sets."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    word, bit = divmod(cap, 32)
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[word], field, getattr(data[word], field) & ~(1 << bit))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def attach(spec: dict) -> None:
    """Build a container's view of its episode (see the module docstring), then drop mounting."""
    global RUN_AS
    for src, dst, read_only in spec.get("bind", []):
        _mount_point(dst, os.path.isdir(src))  # a folder, or a file bound onto itself
        _mount(src, dst, None, MS_BIND | MS_REC, None)
        if read_only:
            _mount("none", dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None)
    for path in spec.get("hide", []):
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=1m")
    libc = ctypes.CDLL(None, use_errno=True)
    for path in spec.get("unmount", []):
        if libc.umount2(path.encode(), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"umount {path}: {os.strerror(err)}")
    drop_capability(CAP_SYS_ADMIN)
    if spec.get("run_as"):
        RUN_AS = (int(spec["run_as"][0]), int(spec["run_as"][1]))


class _Requests:
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


REQUESTS = _Requests()


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


def _kill_all(pgid: int) -> None:
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


def landlock_abi() -> int:
    """The Landlock ABI the kernel (and any seccomp filter around this process) offers the
    sandbox's commands; 0 for none. The task kit's children drop their file access with it."""
    abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), 1)
    return max(int(abi), 0)


def become_spawner(run_as: tuple[int, int]) -> None:
    """Hold ``run_as`` as this process's real ids and root as its effective and saved ones:
    ``posix_spawn(resetids=True)`` then starts each command as ``run_as`` (a vfork, no Python
    in the child), while the executor keeps root's rights. Commands still cannot reach it: it
    is not dumpable, its effective and saved ids are not theirs (no ptrace, no /proc/1/fd), and
    as PID 1 of its namespace it ignores their signals."""
    os.setgroups([])
    os.setresgid(run_as[1], 0, 0)
    os.setresuid(run_as[0], 0, 0)


def run(req: dict) -> dict:
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
    started = time.perf_counter()
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
            resetids=RUN_AS is not None,
        )
    finally:
        os.close(write_end)
        if secrets_fd is not None:
            os.close(secrets_fd)
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
                _kill_all(pid)
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
    _kill_all(pid)
    if status is None:
        _, status, usage = os.wait4(pid, 0)
    while os.getpid() == 1:  # reap the orphans we just killed (they were re-parented to us)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    rc = os.waitstatus_to_exitcode(status)
    os.close(fd)
    wall = time.perf_counter() - started
    killed = None
    if timed_out:
        killed = f"timeout after {req.get('timeout')} s"
    elif rc == -SIGKILL:
        killed = "killed (SIGKILL: memory or CPU-time limit, or out of memory)"
    elif rc == -SIGXCPU:
        killed = "CPU-time limit exceeded"
    elif rc == -SIGXFSZ:
        killed = "file-size limit exceeded"
    return {
        "rc": rc,
        "output": out.text(),
        "dropped_bytes": out.dropped,
        "timed_out": timed_out,
        "killed": killed,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime if usage else 0.0,
        "max_rss_mb": (usage.ru_maxrss / 1024) if usage else 0.0,
    }


def _hex(value) -> str:
    return marshal.dumps(value).hex()


def main() -> None:
    global RUN_AS
    os.closerange(3, 1024)  # the script's descriptor, or anything else the host handed down
    # The config comes on the first line of stdin (marshal, in hex: no import needed to read
    # it), so that `ps` in the sandbox shows no host path; the docker backend passes only
    # {"attach": true} as an argument, and reads a JSON ready line.
    if len(sys.argv) > 1:
        import json

        config, handshake = json.loads(sys.argv[1]), json.dumps
    else:
        config, handshake = marshal.loads(bytes.fromhex(REQUESTS.next_line() or "")), _hex
        if not isinstance(config, dict):
            raise SystemExit("the executor's config must be a dict")
    if config.get("run_as"):  # stay root; run the commands as this uid/gid
        RUN_AS = (int(config["run_as"][0]), int(config["run_as"][1]))
    ready: dict = {"ready": True, "pid1": os.getpid() == 1}
    if config.get("view"):
        try:
            build_root(config["view"])
            ready["mounts"] = True
            ready["missing"] = missing_runtime(config["view"])
        except OSError as e:
            ready["mounts"] = False
            ready["mount_error"] = str(e)
        try:
            harden(keep_caps=RUN_AS is not None)
            ready["hardened"] = True
        except OSError as e:
            ready["hardened"] = False
            ready["harden_error"] = str(e)
    ready["landlock"] = landlock_abi()
    # Children must not inherit the request channel.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    reply.write(handshake(ready) + "\n")
    import json

    if config.get("attach"):
        line = REQUESTS.next_line()
        if line is None:
            return
        try:
            attach(json.loads(line)["attach"])
            reply.write(json.dumps({"attached": True}) + "\n")
        except Exception as e:  # the host gives up on this container
            reply.write(json.dumps({"attached": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
            return
    if RUN_AS:
        become_spawner(RUN_AS)
    while (line := REQUESTS.next_line()) is not None:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line))
        except Exception as e:  # report, keep serving: one bad request must not end the sandbox
            answer = {"error": f"{type(e).__name__}: {e}"}
        reply.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
