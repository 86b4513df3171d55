"""The host's file work on folders a sandbox has written (workspaces, run copies, artifacts).

Everything under such a folder is the agent's: a file may have become a symbolic link to a
file of the host, a folder a link to another folder, a name a FIFO that blocks whoever opens it.
The host runs as a user the sandbox is not (often root), so following any of them would read or
write where the sandbox cannot. Every function here walks the path one component at a time
relative to an open folder, with ``O_NOFOLLOW``, and treats a link or special file as absent (to
read) or as something to replace (to write). Nothing here follows a link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(rel: str) -> list[str]:
    parts = [p for p in Path(rel).parts if p not in ("", ".")]
    if not parts or any(p == ".." or p.startswith("/") for p in parts):
        raise ValueError(f"{rel!r} is not a path inside the folder")
    return parts


def _open_parent(root: Path, parts: list[str], create: bool = False) -> int:
    """A descriptor of the folder holding ``parts[-1]``. A component that is missing or not a
    real folder raises OSError, or with ``create`` is replaced by a new folder."""
    fd = os.open(root, DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as e:  # missing, or a link or a file in its place (ENOTDIR)
                if not create:
                    raise
                if e.errno != errno.ENOENT:
                    _remove_at(fd, name)
                os.mkdir(name, 0o755, dir_fd=fd)
                nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_at(dir_fd: int, name: str) -> None:
    st = os.lstat(name, dir_fd=dir_fd)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def kind(root: Path, rel: str) -> str | None:
    """'file', 'dir', 'link' or 'special' for what is at ``rel`` (no link followed on the way:
    a link on the way makes the whole path a 'link'), or None."""
    parts = _parts(rel)
    fd = os.open(root, DIR_FLAGS)
    try:
        for name in parts[:-1]:
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                return "link"
            if not stat.S_ISDIR(st.st_mode):
                return None
            nxt = os.open(name, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        try:
            st = os.lstat(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            return None
    finally:
        os.close(fd)
    return _kind(st.st_mode)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "special"


def read_bytes(root: Path, rel: str) -> bytes | None:
    """The content of the regular file at ``rel``; None if there is none (missing, a link, a
    FIFO or device, or a link on the way)."""
    parts = _parts(rel)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        parent = _open_parent(root, parts)
        try:
            fd = os.open(parts[-1], flags, dir_fd=parent)
        finally:
            os.close(parent)
    except OSError:  # missing, a link (ELOOP) or a file (ENOTDIR) on the way or in its place
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def read_text(root: Path, rel: str) -> str | None:
    data = read_bytes(root, rel)
    return None if data is None else data.decode(errors="replace")


def write_bytes(root: Path, rel: str, data: bytes, owner: int | None = None) -> None:
    """Make ``rel`` a regular file holding ``data``: whatever is in the way (a link, a special
    file, a folder, a link on the way) is replaced, never followed. An existing regular file is
    overwritten in place (it keeps its owner; truncating after writing spares ext4's flush on
    truncate-to-zero, ~4 ms per edit). A new file or folder goes to ``owner``."""
    parts = _parts(rel)
    parent = _open_parent(root, parts, create=True)
    name = parts[-1]
    try:
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            _remove_at(parent, name)
            st = None
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags | (0 if st else os.O_CREAT | os.O_EXCL), 0o644, dir_fd=parent)
        except PermissionError:  # a file the sandbox made unwritable (chmod 000): a new one
            _remove_at(parent, name)
            st = None
            fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.truncate()
            if st is None and owner is not None:
                os.fchown(fd, owner, owner)
    finally:
        os.close(parent)


def write_text(root: Path, rel: str, text: str, owner: int | None = None) -> None:
    write_bytes(root, rel, text.encode(), owner)


def remove(root: Path, rel: str) -> None:
    """Remove whatever is at ``rel`` (a link itself, not its target); nothing if absent."""
    parts = _parts(rel)
    try:
        parent = _open_parent(root, parts)
    except OSError:  # a component missing, or a link or file on the way: nothing to remove
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            _remove_at(parent, parts[-1])
    finally:
        os.close(parent)


def walk(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, kind) of everything under ``root``, parents first, sorted, caches
    skipped; links and special files are listed, never entered or opened."""
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow links
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        base = Path(dirpath)
        for name in dirnames + sorted(filenames):
            path = base / name
            yield path.relative_to(root).as_posix(), _kind(os.lstat(path).st_mode)


def not_regular(root: Path) -> list[str]:
    """What under ``root`` is neither a regular file nor a folder (links, FIFOs, sockets)."""
    return [f"{rel} ({k})" for rel, k in walk(root) if k in ("link", "special")]
