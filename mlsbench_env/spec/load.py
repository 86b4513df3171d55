"""Loaded tasks: ``Task`` (a spec plus its folder: regions, baselines, scaffold files, content
hash), the trusted task kit's files, and ``load_task`` for shipped ids and task folders.

Every error names the file, the field and what was expected (``TaskSpecError``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from mlsbench_env.errors import TaskSpecError, UnknownNameError
from mlsbench_env.spec.model import Setting, TaskSpec


@dataclass(frozen=True)
class Region:
    """One editable region of the scaffold (index among the file's regions, 1-based)."""

    file: str
    start: int
    end: int
    index: int


@dataclass(frozen=True)
class Task:
    """A loaded task: its spec plus where its files are."""

    spec: TaskSpec
    root: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def gym_id(self) -> str:
        return f"mlsbench/{self.spec.id}-v{self.spec.version}"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def visible_settings(self) -> list[Setting]:
        return [s for s in self.spec.settings if not s.hidden]

    @property
    def baseline_names(self) -> list[str]:
        return ["default"] + [b.name for b in self.spec.baselines]

    @cached_property
    def regions(self) -> list[Region]:
        out: list = []
        count: dict[str, int] = {}
        for r in self.spec.editable:
            count[r.file] = count.get(r.file, 0) + 1
            out.append(Region(r.file, r.lines[0], r.lines[1], count[r.file]))
        return out

    def _baseline_folder(self, name: str) -> Path:
        if name not in self.baseline_names:
            raise UnknownNameError("baseline", name, self.baseline_names)
        return self.root / "baselines" / name

    def baseline_regions(self, name: str) -> dict[tuple[str, int], str]:
        """The replacement text of each region for baseline ``name`` (empty for default): from
        <file>, or <file>.<k> for the k-th region of a file that has several."""
        if name == "default":
            return {}
        folder = self._baseline_folder(name)
        out = {}
        for region in self.regions:
            several = sum(1 for r in self.regions if r.file == region.file) > 1
            source = f"{region.file}.{region.index}" if several else region.file
            if not (folder / source).is_file():
                raise TaskSpecError(
                    str(folder), source, "missing replacement text for this editable region"
                )
            out[(region.file, region.index)] = (folder / source).read_text()
        return out

    @property
    def is_competition(self) -> bool:
        return self.spec.kind == "competition"

    def may_create(self, path: str) -> bool:
        if self.is_competition:  # the whole workspace is the agent's
            return True
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.spec.creatable)

    def baseline_files(self, name: str) -> dict[str, str]:
        """A competition baseline's pipeline: every file of baselines/<name>/ by relative path
        (empty for `default`, which submits the sample submission)."""
        if name == "default":
            return {}
        folder = self._baseline_folder(name)
        files = {p.relative_to(folder).as_posix(): p.read_text() for p in _files_under(folder)}
        if not files:
            raise TaskSpecError(str(folder), "(folder)", "no pipeline files for this baseline")
        return files

    def secrets(self) -> dict[str, str]:
        """The final evaluation's secrets (``spec.secrets``): name -> content of hidden/name."""
        return {name: (self.root / "hidden" / name).read_text() for name in self.spec.secrets}

    def hidden_sources(self) -> tuple[Path, ...]:
        """The competition's source data on this machine (``competition.hide``), where present."""
        if self.spec.competition is None:
            return ()
        out = []
        for entry in self.spec.competition.hide:
            if entry.startswith("/"):
                path = Path(entry)
            else:
                module, _, sub = entry.partition(":")
                try:
                    found = importlib.util.find_spec(module)
                except (ImportError, ValueError):
                    found = None
                if found is None or not found.submodule_search_locations:
                    continue
                path = Path(list(found.submodule_search_locations)[0]) / sub
            if path.exists():
                out.append(path.resolve())
        return tuple(out)

    def readable_sources(self) -> tuple[Path, ...]:
        """Folders of the host a sandbox of this task reads (read-only): none for a shipped task."""
        return ()

    def anchors(self) -> dict | None:
        path = self.root / "anchors.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise TaskSpecError(str(path), "(file)", f"not valid JSON: {e}") from e

    def scaffold_files(self) -> dict[str, Path]:
        """Every file a workspace of this task starts with (relative path -> source): repo/
        and, for a research task, the trusted task kit as the fixed package ``taskkit/``,
        taken from the installed package (never from a workspace)."""
        files = {p.relative_to(self.repo).as_posix(): p for p in _files_under(self.repo)}
        if not self.is_competition:
            files.update(kit_files())
        return files

    @cache  # noqa: B019 (tasks are few and live for the process)
    def content_hash(self, *parts: str) -> str:
        """sha256 over the task's files (or only the named top-level parts), for records. The
        task kit counts as part of repo/: a kit change shows like any change of the task."""
        h = hashlib.sha256()
        names = parts or ("task.yaml", "repo", "hidden", "baselines", "grader.py", "private")
        for name in names:
            base = self.root / name
            for p in [base] if base.is_file() else _files_under(base):
                h.update(str(p.relative_to(self.root)).encode())
                h.update(p.read_bytes())
            if name == "repo" and not self.is_competition:
                for rel, p in kit_files().items():
                    h.update(rel.encode())
                    h.update(p.read_bytes())
        return h.hexdigest()[:16]


KIT_PACKAGE = "taskkit"  # the task kit's name inside a workspace
# libyaml's safe loader parses a task.yaml ~10x faster than the pure-Python one (every listing
# and test collection loads each task); PyYAML builds without libyaml only on odd platforms
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _files_under(folder: Path) -> list[Path]:
    """The files under ``folder``, sorted, caches left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def kit_files() -> dict[str, Path]:
    """The trusted task kit's files, as a workspace holds them (``taskkit/<module>.py``)."""
    kit = Path(__file__).parents[1] / "taskkit"
    return {f"{KIT_PACKAGE}/{p.name}": p for p in sorted(kit.glob("*.py"))}


def _format_validation_error(e: ValidationError) -> tuple[str, str]:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    got = err.get("input")
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check its spelling against docs/writing-tasks.md)"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif not isinstance(got, dict):
        msg += f" (got {got!r})"
    more = len(e.errors()) - 1
    return field, msg + (f"; and {more} more problem(s)" if more else "")


def load_task_dir(root: Path) -> Task:
    """Load and check ``root/task.yaml`` against the files beside it."""
    root = Path(root)
    path = root / "task.yaml"
    if not path.is_file():
        raise TaskSpecError(str(path), "(file)", "task.yaml not found; every task folder needs one")
    try:
        raw = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except yaml.YAMLError as e:
        raise TaskSpecError(str(path), "(file)", f"not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise TaskSpecError(str(path), "(top level)", "expected a mapping of fields")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as e:
        raise TaskSpecError(str(path), *_format_validation_error(e)) from None
    if spec.id != root.name:
        raise TaskSpecError(
            str(path), "id", f"{spec.id!r} must equal the folder name {root.name!r}"
        )
    task = Task(spec=spec, root=root)
    _check_regions(task, str(path))
    _check_budget_check(task, str(path))
    if not task.is_competition and (task.repo / KIT_PACKAGE).exists():
        raise TaskSpecError(
            str(path),
            "(folder)",
            f"repo/{KIT_PACKAGE} is where the task kit goes in a "
            "workspace; rename that folder (the kit comes from the installed package)",
        )
    return task


def _check_budget_check(task: Task, where: str) -> None:
    """A budget check's own command must run a fixed file of the scaffold (what runs it is the
    trusted harness, never a file the agent may create)."""
    check = task.spec.budget_check
    if check is None or not check.command.strip():
        return
    scripts = [w for w in check.command.split() if w.endswith(".py")]
    if not scripts:
        raise TaskSpecError(
            where, "budget_check.command", "expected a command that runs a .py file of repo/"
        )
    for script in scripts:
        if not (task.repo / script).is_file() or task.may_create(script):
            raise TaskSpecError(
                where,
                "budget_check.command",
                f"{script!r} must be a fixed file of repo/ (found: "
                f"{(task.repo / script).is_file()}; the agent may create it: "
                f"{task.may_create(script)})",
            )
        if any(r.file == script for r in task.regions):
            raise TaskSpecError(
                where, "budget_check.command", f"{script!r} has editable lines; use a fixed file"
            )


def _check_regions(task: Task, where: str) -> None:
    by_file: dict[str, list[Region]] = {}
    for i, region in enumerate(task.regions):
        field = f"editable.{i}"
        path = task.repo / region.file
        if not path.is_file():
            raise TaskSpecError(where, f"{field}.file", f"{region.file!r} is not a file in repo/")
        n = len(path.read_text().splitlines())
        if region.end > n:
            raise TaskSpecError(
                where,
                f"{field}.lines",
                f"range {region.start}-{region.end} goes beyond the end of {region.file} "
                f"({n} lines)",
            )
        for other in by_file.get(region.file, []):
            if region.start <= other.end and other.start <= region.end:
                raise TaskSpecError(
                    where,
                    f"{field}.lines",
                    f"range {region.start}-{region.end} overlaps {other.start}-{other.end} "
                    f"in {region.file}",
                )
        by_file.setdefault(region.file, []).append(region)
    for file, regions in by_file.items():
        if [r.start for r in regions] != sorted(r.start for r in regions):
            raise TaskSpecError(where, "editable", f"ranges of {file} must be listed in order")


def builtin_tasks_dir() -> Path:
    """The shipped tasks: package data when installed, the repo's tasks/ when editable."""
    packaged = Path(str(resources.files("mlsbench_env"))) / "tasks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "tasks"


def builtin_task_ids(kind: str | None = None) -> list[str]:
    """The shipped tasks' ids (only those of ``kind``, research or competition, if given)."""
    root = builtin_tasks_dir()
    if not root.is_dir():
        return []
    ids = sorted(p.name for p in root.iterdir() if (p / "task.yaml").is_file())
    if kind is None:
        return ids
    return [t for t in ids if load_task_dir(root / t).spec.kind == kind]


def load_task(task: str | Path) -> Task:
    """A shipped task by id, a task folder by path, or ``mlebench-<id>`` (spec/mlebench.py)."""
    if isinstance(task, str) and task.startswith("mlebench-"):
        from mlsbench_env.spec.mlebench import load_mlebench_task  # only MLE-bench users

        return load_mlebench_task(task.removeprefix("mlebench-"))
    if isinstance(task, Path) or "/" in str(task) or str(task).startswith("."):
        return load_task_dir(Path(task))
    known = builtin_task_ids()
    if task not in known:
        raise UnknownNameError("task", str(task), known, "Pass a path to use a task folder.")
    return load_task_dir(builtin_tasks_dir() / task)
