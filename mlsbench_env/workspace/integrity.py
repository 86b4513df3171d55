"""What only the `edit` tool may change, kept so: ``FixedFileGuard``, the part of every
``Workspace`` that restores fixed content a command changed and compares the fixed regions with
the pristine scaffold, and ``transplant``, which carries only the editable regions into a
pristine copy of the scaffold for an evaluation run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mlsbench_env.spec import Task
from mlsbench_env.workspace import hostfs

if TYPE_CHECKING:
    from mlsbench_env.workspace.workspace import Range


def split_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _fixed_parts(text: str, spans: Iterable[tuple[int, int]]) -> list[str]:
    """The text between and around the 1-based inclusive line ranges ``spans``."""
    lines = split_lines(text)
    parts, pos = [], 0
    for start, end in spans:
        parts.append("".join(lines[pos : start - 1]))
        pos = end
    parts.append("".join(lines[pos:]))
    return parts


class FixedFileGuard:
    """The integrity checks of a ``Workspace`` (which sets every attribute named here)."""

    task: Task
    root: Path
    pristine: dict[str, bytes]
    ranges: dict[str, list[Range]]
    created: set[str]
    free: bool
    read: Callable[[str], str]

    def check_integrity(
        self, known_editable_text: dict[str, str], owner: int | None = None
    ) -> list[str]:
        """Restore fixed files a command changed; return one message per event.

        ``known_editable_text`` is the content of each file with editable ranges (and each
        created file) before the command: a command that changes those is reverted too,
        because only the `edit` tool keeps the editable ranges known. A link or special file
        in place of any of them (or of a folder on the way, or of the workspace folder itself)
        is replaced, never followed. ``owner``: the sandbox's uid, for a rebuilt folder.
        """
        events = []
        if hostfs.kind(self.root.parent, self.root.name) != "dir":  # renamed, a link in its place
            hostfs.remove(self.root.parent, self.root.name)
            self.root.mkdir()
            if owner is not None:  # the sandbox's uid, as the folder it replaced
                os.chown(self.root, owner, owner)
            for rel, data in self.pristine.items():
                hostfs.write_bytes(self.root, rel, data)
            events.append("the workspace folder was replaced and has been rebuilt")
        if self.free:
            return events
        for rel in [*self.pristine, *sorted(self.created)]:
            if rel in self.ranges or rel in self.created:
                if hostfs.read_text(self.root, rel) != known_editable_text[rel]:
                    hostfs.write_text(self.root, rel, known_editable_text[rel])
                    hint = "; use `edit` to change editable lines" if rel in self.ranges else ""
                    events.append(
                        f"{rel} was changed outside the `edit` tool and was restored{hint}"
                    )
            elif hostfs.read_bytes(self.root, rel) != self.pristine[rel]:
                hostfs.write_bytes(self.root, rel, self.pristine[rel])
                events.append(f"fixed file {rel} was changed and has been restored")
        return events

    def editable_snapshot(self) -> dict[str, str]:
        if self.free:
            return {}
        return {rel: self.read(rel) for rel in [*self.ranges, *sorted(self.created)]}

    def fixed_unchanged(self) -> list[str]:
        """Files whose fixed regions differ from the pristine scaffold (empty when all is well)."""
        bad = []
        for rel, ranges in self.ranges.items():
            now = _fixed_parts(self.read(rel), ((r.start, r.end) for r in ranges))
            pristine = [(r.start, r.end) for r in self.task.regions if r.file == rel]
            if now != _fixed_parts(self.pristine[rel].decode(), pristine):
                bad.append(rel)
        return bad


def transplant(
    task: Task,
    regions: dict[tuple[str, int], str],
    created: dict[str, str],
    dest: Path,
    *,
    with_hidden: bool,
) -> dict[str, list[tuple[int, int]]]:
    """Build a pristine copy of the scaffold at ``dest`` with only the editable regions carried.

    Regions are located by the task's own (pristine) line ranges, so nothing outside them can
    travel from the workspace into the evaluation. Returns the editable line ranges of the copy.
    """
    if dest.exists():
        shutil.rmtree(dest)
    for rel, src in task.scaffold_files().items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)
    hidden = task.root / "hidden"
    if with_hidden and hidden.is_dir():
        # the task's secrets travel on the secrets channel to the harness, never as files
        shutil.copytree(
            hidden,
            dest,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", *task.spec.secrets),
        )
    by_file: dict[str, list] = {}
    for region in task.regions:
        by_file.setdefault(region.file, []).append(region)
    ranges: dict[str, list[tuple[int, int]]] = {}
    for file, file_regions in by_file.items():
        lines = split_lines((dest / file).read_text())
        out: list[str] = []
        spans, pos = [], 0
        for r in file_regions:
            out += lines[pos : r.start - 1]
            # a region the caller does not carry keeps the scaffold's text (the default baseline)
            new = lines[r.start - 1 : r.end]
            if (file, r.index) in regions:
                new = split_lines(ensure_newline(regions[(file, r.index)]))
            spans.append((len(out) + 1, len(out) + len(new)))
            out += new
            pos = r.end
        hostfs.write_text(dest, file, "".join(out + lines[pos:]))
        ranges[file] = spans
    for rel, text in created.items():
        if not task.may_create(rel) or (dest / rel).exists():
            continue
        hostfs.write_text(dest, rel, text)
        ranges[rel] = [(1, len(split_lines(text)))]
    return ranges
