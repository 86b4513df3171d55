"""The episode's copy of the scaffold: view, edits inside the editable ranges, undo, diff, and
the in-memory state that snapshots capture and restore.

Ranges move with edits: replacing lines 10-12 of a range 5-20 with five lines makes it 5-22,
and a later range in the same file shifts by two. Everything outside the ranges is "fixed";
``FixedFileGuard`` (integrity.py) restores fixed content that something else (a shell command)
changed.

Every file operation on the workspace goes through ``hostfs``: the sandbox writes here too, and
the host never follows a link or opens a special file that a command left in its place.
"""

from __future__ import annotations

import difflib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mlsbench_env.errors import EditError
from mlsbench_env.spec import Task
from mlsbench_env.workspace import hostfs
from mlsbench_env.workspace.integrity import FixedFileGuard, ensure_newline, split_lines


@dataclass
class Range:
    start: int  # 1-based; an emptied range has end == start - 1
    end: int


def _copy(ranges: list[Range]) -> list[Range]:
    return [Range(r.start, r.end) for r in ranges]


@dataclass
class _Snapshot:
    path: str
    text: str | None  # None: the file did not exist
    ranges: list[Range] = field(default_factory=list)


@dataclass(frozen=True)
class WorkspaceState:
    """Everything that makes a workspace what it is, held in memory (``Workspace.capture``):
    every file and folder under the root (caches excepted), the editable ranges, the created
    files and the undo history. Restoring it into any workspace of the same task reproduces it
    byte for byte, so later observations are identical."""

    files: dict[str, tuple[bytes, int]]  # rel -> (content, mode)
    links: dict[str, str]  # rel -> symlink target (links the agent made; never followed)
    dirs: frozenset[str]
    ranges: dict[str, tuple[tuple[int, int], ...]]
    created: frozenset[str]
    history: tuple[_Snapshot, ...]

    @property
    def nbytes(self) -> int:
        return sum(len(data) for data, _ in self.files.values())


class Workspace(FixedFileGuard):
    """A materialized scaffold with edit-surface bookkeeping."""

    def __init__(self, task: Task, root: Path):
        self.task = task
        self.root = Path(root)
        self.pristine: dict[str, bytes] = {}
        self.ranges: dict[str, list[Range]] = {}
        self.created: set[str] = set()
        self.history: list[_Snapshot] = []
        # a competition's workspace is the agent's: every file editable, any file creatable,
        # nothing restored (only the submission file is graded)
        self.free = task.is_competition
        self._materialize()

    # ---------------------------------------------------------------- setup
    def _materialize(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        for rel, src in self.task.scaffold_files().items():
            # copied, never linked: a link would name the task's folder on the host, and the
            # sandbox sees nothing of it (the largest data file is a few MB)
            dst = self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = src.read_bytes()
            dst.write_bytes(data)
            self.pristine[rel] = data
        for region in self.task.regions:
            self.ranges.setdefault(region.file, []).append(Range(region.start, region.end))

    # ---------------------------------------------------------------- reading
    def resolve(self, path: str) -> tuple[str, Path]:
        """Normalize a user path to (relative posix path, absolute path) inside the workspace."""
        full = (self.root / path).resolve()  # an absolute path replaces the root
        root = self.root.resolve()
        if full != root and root not in full.parents:
            raise EditError(f"path {path!r} is outside the workspace; use a path relative to it")
        return full.relative_to(root).as_posix(), full

    def read(self, rel: str) -> str:
        text = hostfs.read_text(self.root, rel)
        if text is None:
            raise EditError(f"{rel} is not a regular file of the workspace")
        return text

    def is_editable_file(self, rel: str) -> bool:
        if self.free:
            return hostfs.kind(self.root, rel) == "file"
        return rel in self.ranges or rel in self.created

    def editable_ranges(self, rel: str) -> list[Range]:
        if rel in self.created or (self.free and self.is_editable_file(rel)):
            return [Range(1, len(split_lines(self.read(rel))))]
        return self.ranges.get(rel, [])

    def describe_ranges(self, rel: str) -> str:
        rs = self.editable_ranges(rel)
        if not rs:
            return "none (fixed file)"
        return ", ".join(
            f"{r.start}-{r.end}" if r.end >= r.start else f"empty at {r.start}" for r in rs
        )

    def view(self, path: str, start: int | None = None, end: int | None = None) -> str:
        rel, full = self.resolve(path)
        if full.is_dir():
            entries = sorted(
                p.relative_to(self.root).as_posix() + ("/" if p.is_dir() else "")
                for p in full.iterdir()
                if p.name != "__pycache__"
            )
            return f"{rel or '.'}/ (directory)\n" + "\n".join(entries)
        text = hostfs.read_text(self.root, rel) if rel else None
        if text is None:
            raise EditError(
                f"no regular file {rel!r} in the workspace; `view` a directory to list files"
            )
        lines = text.splitlines()
        n = len(lines)
        s = max(1, start or 1)
        e = min(n, end or n)
        if s > max(n, 1) or (end is not None and end < s):
            raise EditError(f"line range {start}-{end} is outside {rel} (1-{n})")
        marks = self.editable_ranges(rel)
        width = len(str(max(n, 1)))
        out = [
            f"{rel} (lines {s}-{e} of {n}; editable: {self.describe_ranges(rel)}; "
            "'*' marks editable lines)"
        ]
        for i in range(s, e + 1):
            star = "*" if any(r.start <= i <= r.end for r in marks) else " "
            out.append(f"{i:>{width}}{star}| {lines[i - 1]}")
        return "\n".join(out)

    # ---------------------------------------------------------------- editing
    def _snapshot(self, rel: str) -> None:
        text = hostfs.read_text(self.root, rel)
        self.history.append(_Snapshot(rel, text, _copy(self.ranges.get(rel, []))))

    def _refuse_fixed(self, rel: str, what: str) -> None:
        if rel in self.pristine:
            raise EditError(
                f"{rel} is a fixed file (no editable lines); {what} refused, file untouched. "
                f"Editable: {self._surface()}"
            )
        raise EditError(f"{rel} does not exist; {what} refused. Editable: {self._surface()}")

    def _surface(self) -> str:
        if self.free:
            return "every file of the workspace; new files anywhere"
        parts = [f"{f} lines {self.describe_ranges(f)}" for f in self.ranges]
        parts += [f"{f} (created)" for f in sorted(self.created)]
        if self.task.spec.creatable:
            parts.append("new files matching " + ", ".join(self.task.spec.creatable))
        return "; ".join(parts)

    def replace(self, path: str, start: int, end: int, text: str) -> str:
        """Replace lines start..end (inclusive) by text; end = start - 1 inserts before start."""
        rel, _ = self.resolve(path)
        if not self.is_editable_file(rel):
            self._refuse_fixed(rel, "edit")
        lines = split_lines(self.read(rel))
        ranges = self.editable_ranges(rel)
        # an insertion (end = start - 1) fits a range it touches: start <= r.end + 1
        target = next((r for r in ranges if r.start <= start and end <= r.end), None)
        if target is None or start < 1 or end > len(lines):
            raise EditError(
                f"lines {start}-{end} of {rel} are not inside one editable range "
                f"({self.describe_ranges(rel)}); edit refused, file untouched"
            )
        new = split_lines(ensure_newline(text))
        self._snapshot(rel)
        lines[start - 1 : end] = new
        hostfs.write_text(self.root, rel, "".join(lines))
        delta = len(new) - (end - start + 1)
        if rel in self.ranges:
            for r in self.ranges[rel]:
                if r is target:
                    r.end += delta
                elif r.start > target.end - delta:
                    r.start += delta
                    r.end += delta
        lo = max(1, start - 2)
        return self.view(rel, lo, min(len(lines), start + len(new) + 1))

    def insert(self, path: str, after: int, text: str) -> str:
        """Insert text after line ``after`` (0 = at the top of the file)."""
        return self.replace(path, after + 1, after, text)

    def create(self, path: str, text: str) -> str:
        rel, _ = self.resolve(path)
        if hostfs.kind(self.root, rel) is not None:
            raise EditError(f"{rel} already exists; use replace/insert to change it")
        if not self.task.may_create(rel):
            allowed = ", ".join(self.task.spec.creatable) or "none in this task"
            raise EditError(f"creating {rel} is not allowed; allowed new files: {allowed}")
        self._snapshot(rel)
        hostfs.write_text(self.root, rel, ensure_newline(text))
        self.created.add(rel)
        return self.view(rel)

    def undo(self, n: int = 1) -> list[str]:
        if n < 1:
            raise EditError(f"undo needs n >= 1, got {n}")
        if not self.history:
            raise EditError("nothing to undo")
        undone = []
        for _ in range(min(n, len(self.history))):
            snap = self.history.pop()
            if snap.text is None:
                hostfs.remove(self.root, snap.path)
                self.created.discard(snap.path)
            else:
                hostfs.write_text(self.root, snap.path, snap.text)
                if snap.path in self.ranges:
                    self.ranges[snap.path] = snap.ranges
            undone.append(snap.path)
        return undone

    # ---------------------------------------------------------------- snapshots
    def capture(self) -> WorkspaceState:
        """The workspace's state (see ``WorkspaceState``); FIFOs and other special files that
        a command left are not part of it."""
        files, links, dirs = {}, {}, set()
        for rel, k in hostfs.walk(self.root):
            if k == "link":
                links[rel] = os.readlink(self.root / rel)
            elif k == "dir":
                dirs.add(rel)
            elif k == "file":
                data = hostfs.read_bytes(self.root, rel)
                if data is not None:
                    files[rel] = (data, os.lstat(self.root / rel).st_mode & 0o7777)
        return WorkspaceState(
            files=files,
            links=links,
            dirs=frozenset(dirs),
            ranges={f: tuple((r.start, r.end) for r in rs) for f, rs in self.ranges.items()},
            created=frozenset(self.created),
            history=tuple(_Snapshot(h.path, h.text, _copy(h.ranges)) for h in self.history),
        )

    def restore(self, state: WorkspaceState, owner: int | None = None) -> None:
        """Make this workspace what ``state`` was: writes only what differs, removes what
        ``state`` did not have. New files and folders go to ``owner`` (the sandbox's uid)."""
        for rel, k in list(hostfs.walk(self.root)):
            keep = (
                (k == "link" and state.links.get(rel) == os.readlink(self.root / rel))
                or (k == "dir" and rel in state.dirs)
                or (k == "file" and rel in state.files)
            )
            if not keep:
                hostfs.remove(self.root, rel)  # nothing if a removed folder held it
        for rel in sorted(state.dirs):
            if hostfs.kind(self.root, rel) != "dir":
                hostfs.remove(self.root, rel)
                parent = self.root / rel
                parent.mkdir()  # its parents exist: dirs are sorted, parents first
                if owner is not None:
                    os.chown(parent, owner, owner, follow_symlinks=False)
        for rel, target in state.links.items():
            if hostfs.kind(self.root, rel) != "link":
                os.symlink(target, self.root / rel)
        for rel, (data, mode) in state.files.items():
            if hostfs.read_bytes(self.root, rel) != data:
                hostfs.write_bytes(self.root, rel, data, owner)
            path = self.root / rel
            if os.lstat(path).st_mode & 0o7777 != mode:
                os.chmod(path, mode, follow_symlinks=False)
        self.ranges = {f: [Range(a, b) for a, b in rs] for f, rs in state.ranges.items()}
        self.created = set(state.created)
        self.history = [_Snapshot(h.path, h.text, _copy(h.ranges)) for h in state.history]

    # ---------------------------------------------------------------- edit surface
    def region_texts(self) -> dict[tuple[str, int], str]:
        out = {}
        for file, ranges in self.ranges.items():
            lines = split_lines(self.read(file))
            for i, r in enumerate(ranges, 1):
                out[(file, i)] = "".join(lines[r.start - 1 : r.end])
        return out

    def created_files(self) -> dict[str, str]:
        return {rel: self.read(rel) for rel in sorted(self.created)}

    def diff(self) -> str:
        chunks: list[str] = []
        for rel in self.ranges:
            old = split_lines(self.pristine[rel].decode())
            new = split_lines(self.read(rel))
            chunks += difflib.unified_diff(old, new, f"a/{rel}", f"b/{rel}")
        for rel, text in self.created_files().items():
            chunks += difflib.unified_diff([], split_lines(text), "/dev/null", f"b/{rel}")
        return "".join(chunks)
