"""Linux calls the standard library lacks, through libc: mounts, pivot_root, capabilities,
prctl and Landlock. Part of the in-sandbox executor (standard library only)."""

from __future__ import annotations

import ctypes
import os

LIBC = ctypes.CDLL(None, use_errno=True)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
# flags a remount must keep (in a user namespace they are locked on mounts of the host)
KEEP_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096  # noatime, nodiratime, relatime
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
CAP_SYS_ADMIN, MNT_DETACH = 21, 2
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 4, 24, 28, 38
# SECBIT_NOROOT, its lock, SECBIT_NO_CAP_AMBIENT_RAISE, its lock: exec never grants capabilities
NO_ROOT_BITS = 0x01 | 0x02 | 0x40 | 0x80
CAPABILITY_VERSION_3 = 0x20080522


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = LIBC.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(rc, f"mount {source} -> {target}")


def umount(path: str) -> None:
    """Detach the mount at ``path`` (lazily: what is still open keeps working)."""
    _check(LIBC.umount2(path.encode(), MNT_DETACH), f"umount {path}")


def pivot_root(new: str, old: str) -> None:
    rc = LIBC.syscall(SYS_PIVOT_ROOT[os.uname().machine], new.encode(), old.encode())
    _check(rc, "pivot_root")


def read_only(path: str) -> None:
    """Remount the bind at ``path`` read-only, keeping the flags the kernel locked on it."""
    kept = os.statvfs(path).f_flag & KEEP_FLAGS
    mount("none", path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | kept, None)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]


def harden(keep_caps: bool) -> None:
    """Nothing a command starts may gain privileges or look into the executor (its /proc
    entries, its request and reply pipes). ``keep_caps``: the executor stays root to start
    commands as another uid; otherwise the commands share its uid and it gives up every
    capability, for itself and for whatever it execs."""
    LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if keep_caps:
        return
    LIBC.prctl(PR_SET_SECUREBITS, NO_ROOT_BITS, 0, 0, 0)
    for cap in range(64):
        LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # past the last capability: EINVAL, ignored
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(LIBC.capset(ctypes.byref(header), data), "capset")


def drop_capability(cap: int) -> None:
    """Remove ``cap`` from this process's effective, permitted and inheritable sets."""
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(LIBC.capget(ctypes.byref(header), data), "capget")
    word, bit = divmod(cap, 32)
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[word], field, getattr(data[word], field) & ~(1 << bit))
    _check(LIBC.capset(ctypes.byref(header), data), "capset")


def landlock_abi() -> int:
    """The Landlock ABI the kernel (and any seccomp filter around this process) offers the
    sandbox's commands; 0 for none. The task kit's children drop their file access with it."""
    abi = LIBC.syscall(444, None, ctypes.c_size_t(0), 1)
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
