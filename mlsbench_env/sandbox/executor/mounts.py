"""What the sandbox's commands see, built by the executor: the `local` backend's fresh root
(``build_root``), a container's episode (``attach``), and what of the host's interpreter the
commands cannot reach. Part of the in-sandbox executor (standard library only)."""

from __future__ import annotations

import os

from .syscalls import (
    CAP_SYS_ADMIN,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    drop_capability,
    mount,
    pivot_root,
    read_only,
    umount,
)


def mount_point(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build_root(view: dict) -> None:
    """Pivot into a fresh root that holds only what ``view`` lists (``sandbox/visibility.py``):
    ``entries`` (bind, tmpfs, proc, link; parents first), then ``masks`` covered."""
    # Open every source before anything is covered; bind them through /proc/self/fd.
    sources = {}
    for e in view["entries"]:
        if e[0] == "bind" and os.path.exists(e[1]):
            sources[e[1]] = os.open(e[1], os.O_PATH | os.O_CLOEXEC)
    # The new root is a tmpfs over /tmp: a private mount namespace, the host's /tmp is untouched.
    new = "/tmp"
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for e in view["entries"]:
        kind, path = e[0], e[2] if e[0] == "bind" else e[1]
        target = new + path
        if kind == "bind":
            fd = sources.get(e[1])
            if fd is None:
                continue
            is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
            mount_point(target, is_dir)
            mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC, None)
            if e[3]:
                read_only(target)
        elif kind == "tmpfs":
            mount_point(target, True)
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, e[2])
        elif kind == "proc":
            mount_point(target, True)
            try:  # hidepid: commands see their own processes only, not the executor's
                mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
            except OSError:  # a user namespace may not mount a new proc: keep the namespace's
                mount("/proc", target, None, MS_BIND | MS_REC, None)
        elif kind == "link":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(e[2], target)
    for path in view.get("masks", []):
        if os.path.isdir(new + path):
            mount("tmpfs", new + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    for fd in sources.values():
        os.close(fd)
    os.mkdir(new + "/.old")
    pivot_root(new, new + "/.old")
    os.chdir("/")
    umount("/.old")
    os.rmdir("/.old")
    read_only("/")


def _open_to_others(path: str) -> bool:
    """Every folder on the way to ``path`` and ``path`` itself let other users in (the
    commands' uid has no group of the files)."""
    parts = os.path.realpath(path).split("/")
    for i in range(2, len(parts) + 1):
        if not os.stat("/".join(parts[:i])).st_mode & 0o001:
            return False
    return True


def missing_runtime(view: dict, run_as: tuple[int, int] | None) -> list[str]:
    """What of the host's interpreter the commands cannot reach in the built root (nothing,
    when all is well): missing, or closed to the commands' uid ``run_as``."""
    paths = [view["python"], *view.get("interpreter", [])]
    return [
        p for p in paths if not os.path.exists(p) or (run_as is not None and not _open_to_others(p))
    ]


def attach(spec: dict) -> tuple[int, int] | None:
    """Build a container's view of its episode (``main.py`` describes the request), then drop
    mounting. Returns the uid and gid the commands are to run as, if the request names them."""
    for src, dst, ro in spec.get("bind", []):
        mount_point(dst, os.path.isdir(src))  # a folder, or a file bound onto itself
        mount(src, dst, None, MS_BIND | MS_REC, None)
        if ro:
            mount("none", dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None)
    for path in spec.get("hide", []):
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=1m")
    for path in spec.get("unmount", []):
        umount(path)
    drop_capability(CAP_SYS_ADMIN)
    if spec.get("run_as"):
        return int(spec["run_as"][0]), int(spec["run_as"][1])
    return None
