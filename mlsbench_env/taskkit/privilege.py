"""Least privilege for a process that is about to import agent code.

``drop`` takes away what agent code needs least and could misuse most, and nothing can give it
back: file access beyond the interpreter, the files the task lets agent code read and one
scratch folder for writes; TCP; signals and abstract sockets outside the process's own domain;
the parent's ``/proc`` entries and memory. Landlock (Linux 5.13+) does it where the kernel has
it, with ``no_new_privs`` so that no setuid program escapes it; a process running as root also
becomes a uid of its own. Called through ctypes: the standard library has no Landlock binding,
and the kit must stay standard library only.
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys
from collections.abc import Sequence

# linux/landlock.h; the syscall numbers are the same on every architecture (the generic table)
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_MAKE_SYM, _REFER, _TRUNCATE, _IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_ONLY = (
    _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
)  # rights a file rule may hold
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_WRITE = (
    _READ | _WRITE_FILE | _TRUNCATE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_DIR | _MAKE_REG | _MAKE_SYM
)
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect (ABI 4)
_SCOPES = (1 << 0) | (1 << 1)  # abstract unix sockets, signals (ABI 6)

NOBODY = 65534

# what every process reads: the OS runtime, device nodes a library opens, CPU facts
SYSTEM_READ = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc",
    "/opt",
    "/sys",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/dev/urandom",
    "/dev/random",
)
SYSTEM_WRITE = ("/dev/null", "/dev/zero")


def packaged_data() -> list[str]:
    """Data sets packages ship on this machine (Debian's datasets, scikit-learn's bundled
    files, matplotlib's sample data): a task's harness may train, test or score on them, and
    its agent code never reads them, so every child of the kit is denied them (their code
    stays importable). Found without importing the packages."""
    import importlib.util

    out = ["/usr/share/datasets", "/var/cache/apt/archives"]
    shipped = {
        "sklearn": [("datasets", s) for s in ("data", "descr", "images")],
        "matplotlib": [("mpl-data", "sample_data")],
    }
    for package, subs in shipped.items():
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            out += [os.path.join(root, *sub) for sub in subs]
    return out


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (or a seccomp filter hides it)."""
    try:
        abi = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


def interpreter_paths() -> list[str]:
    """Where this interpreter's code lives: its prefixes and every existing sys.path entry that
    is not the current working folder (a task's folder is granted file by file)."""
    cwd = os.getcwd()
    out = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    for p in sys.path:
        if (
            p
            and os.path.isabs(p)
            and os.path.exists(p)
            and os.path.realpath(p) != os.path.realpath(cwd)
        ):
            out.add(p)
    return sorted(out)


def _add(libc, ruleset: int, path: str, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this system does not have
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FILE_ONLY
        attr = _PathBeneath(access & handled, fd)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(attr), 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _without(paths: list[str], deny: list[str]) -> list[str]:
    """``paths`` (resolved, a path under another one left out) with every ``deny`` path cut out
    of them. Landlock only grants, so a granted folder that holds a denied path is replaced by
    its other entries, one level at a time."""
    sep = os.sep
    denied = {os.path.realpath(d) for d in deny}
    holders = set()  # the folders that hold a denied path
    for d in denied:
        while (d := os.path.dirname(d)) not in holders and d != sep:
            holders.add(d)
    holders.add(sep)
    reals = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    top = [p for p in reals if not any(p.startswith(q + sep) for q in reals)]
    out: list[str] = []

    def visit(real: str) -> None:
        if real in denied:
            return
        if real not in holders:
            out.append(real)
            return
        try:
            entries = list(os.scandir(real))
        except OSError:
            return
        for e in entries:
            visit(os.path.realpath(e.path) if e.is_symlink() else e.path)

    for path in top:
        if not any(path.startswith(d + sep) for d in denied):
            visit(path)
    return out


def _landlock(abi: int, read: list[str], list_only: list[str], write: list[str]) -> None:
    libc = _libc()
    fs = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(fs, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        for p in read:
            _add(libc, ruleset, p, _READ, fs)
        for p in list_only:
            _add(libc, ruleset, p, _READ_DIR, fs)
        for p in write:
            _add(libc, ruleset, p, _WRITE, fs)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(ruleset)


def _others_can_read(path: str) -> bool:
    """Whether a uid of its own could still read ``path`` (every folder on the way open to
    others): an interpreter under /root is not."""
    path = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False
        if mode & 0o005 != 0o005:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_root(write: list[str]) -> str:
    """Root becomes a uid of its own ("uid"); where the interpreter is not readable to others,
    it stays uid 0 without a single capability, for good ("nocaps")."""
    if all(_others_can_read(p) for p in interpreter_paths()):
        for p in write:
            os.chown(p, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return "uid"
    libc = _libc()
    for cap in range(64):  # the bounding set: no exec can bring a capability back
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP; EINVAL past the last cap
            break
    libc.prctl(28, 0x2F, 0, 0, 0)  # PR_SET_SECUREBITS: NOROOT, NO_SETUID_FIXUP, locked
    data = (_CapData * 2)()
    if (
        libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data) != 0
    ):  # _LINUX_CAPABILITY_VERSION_3
        raise OSError(ctypes.get_errno(), "capset: could not drop the capabilities of root")
    return "nocaps"


def drop(
    read: list[str], write: list[str], list_only: Sequence[str] = (), deny: Sequence[str] = ()
) -> str:
    """Restrict this process, for good, to reading the interpreter, the OS runtime and ``read``
    (files or folders) except what lies under ``deny`` (a data set a package ships, say),
    listing ``list_only`` folders (names, not contents) and writing only under ``write``.
    Returns the isolation level reached: "landlock" (file, TCP and scope rules enforced by the
    kernel, and no root), "uid" or "nocaps" (no Landlock; root became a uid of its own, or lost
    every capability) or "none"."""
    level = _drop_root(write) if os.geteuid() == 0 else "none"
    abi = landlock_abi()
    if abi:
        own = f"/proc/{os.getpid()}"  # its own entries (threads, maps); never the parent's
        everything = _without([*SYSTEM_READ, own, *interpreter_paths(), *read], list(deny))
        _landlock(abi, everything, list(list_only), [*SYSTEM_WRITE, *write])
        level = "landlock"
    else:
        _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return level
