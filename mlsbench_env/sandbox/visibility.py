"""What a sandbox sees: an allow-list, decided here for every backend, and what stays hidden.

A `local` sandbox gets a fresh root (the executor pivots into it, ``executor/mounts.py``) that
holds:

- the OS runtime, read-only: ``/usr``, ``/etc``, the ``/bin``, ``/sbin`` and ``/lib*`` folders
  (or their links into ``/usr``), and the CPU topology that numeric libraries read;
- the interpreter, read-only, wherever it lives: ``sys.prefix``, ``sys.base_prefix`` and the
  site-packages folders (a virtual environment under the temporary folder included);
- the sandbox's root read-write (and ``writable`` folders), ``readable`` folders read-only, and
  ``read_only`` files of the root bound read-only onto themselves (a final run's fixed files);
- a private, size-capped ``/tmp`` and ``/dev/shm``, a minimal ``/dev``, and a ``/proc`` of its own
  PID namespace that shows no other user's processes;

and, inside those, every copy of the shipped tasks and the config's ``hidden`` paths (a
competition's source data) covered by an empty read-only folder. Nothing else of the host exists
in it: no home folders, no other checkouts, no runs folder, no other episodes. A `docker` sandbox
gets the same root, folders, files and masks on top of its image, which holds the OS and the
interpreter and no task file (``docker/shape.py``).
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from mlsbench_env.sandbox import SandboxConfig

if TYPE_CHECKING:
    from mlsbench_env.spec import Task

OS_PATHS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# cpuinfo (torch) and OpenBLAS read the CPU topology; nothing else of /sys is needed
SYS_PATHS = ("/sys/devices/system/cpu", "/sys/devices/system/node")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
STDIO = ("stdin", "stdout", "stderr")


def inside(path: str, parent: str) -> bool:
    """Whether ``path`` is ``parent`` or lies under it (both resolved)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def project_checkout() -> Path | None:
    """This source checkout (the folder holding ``mlsbench_env/`` and ``tasks/``), if any."""
    top = Path(__file__).resolve().parents[2]
    return top if (top / "tasks").is_dir() and (top / "mlsbench_env").is_dir() else None


@cache
def interpreter_paths() -> tuple[str, ...]:
    """The folders the host's interpreter needs, resolved, outermost only."""
    found = {sys.prefix, sys.base_prefix, os.path.dirname(sys.executable)}
    found.update(site.getsitepackages())
    if site.ENABLE_USER_SITE and os.path.isdir(site.getusersitepackages()):
        found.add(site.getusersitepackages())
    found |= {os.path.realpath(p) for p in found}
    found.add(os.path.dirname(os.path.realpath(sys.executable)))
    checkout = project_checkout()
    kept = sorted(
        p
        for p in found
        if os.path.isdir(p)
        and not (checkout and inside(p, str(checkout)))
        # the OS runtime is bound whole already
        and not any(inside(p, o) for o in ("/usr", "/bin", "/lib"))
    )
    return tuple(p for p in kept if not any(inside(p, q) and p != q for q in kept))


@cache
def _runtime() -> tuple[list, ...]:
    entries: list[list] = []
    for path in (*OS_PATHS, *SYS_PATHS):
        if os.path.islink(path):
            entries.append(["link", path, os.readlink(path)])
        elif os.path.isdir(path):
            entries.append(["bind", path, path, True])
    return tuple(entries)


def _bind(path, read_only: bool) -> list:
    p = str(Path(path).resolve())
    return ["bind", p, p, read_only]


def _depth(entry: list) -> int:
    return (entry[2] if entry[0] == "bind" else entry[1]).rstrip("/").count("/")


def local_view(config: SandboxConfig) -> dict:
    """The executor's instructions for building the sandbox's root (``build_root``)."""
    entries = [list(e) for e in _runtime()]
    entries += [["bind", p, p, True] for p in interpreter_paths()]
    entries += [_bind(p, True) for p in config.readable]
    entries += [_bind(config.root, False), *[_bind(p, False) for p in config.writable]]
    entries += [["bind", str(p), str(p), True] for p in config.read_only]
    entries += [
        ["tmpfs", "/tmp", f"size={config.tmp_mb}m,mode=1777"],
        ["tmpfs", "/dev", "size=64k,mode=755"],
        ["tmpfs", "/dev/shm", f"size={config.shm_mb}m,mode=1777"],
        ["proc", "/proc"],
        ["link", "/dev/fd", "/proc/self/fd"],
    ]
    entries += [["bind", f"/dev/{d}", f"/dev/{d}", False] for d in DEVICES]
    entries += [["link", f"/dev/{n}", f"/proc/self/fd/{i}"] for i, n in enumerate(STDIO)]
    # parents before children: a folder exists (and is mounted) before what is bound inside
    # it; among equals the order above (a run's read-only files after its root); stable sort
    entries.sort(key=_depth)
    bound = [e[2] for e in entries if e[0] == "bind" and os.path.isdir(e[1])]
    masks = {str(Path(p).resolve()) for p in (*config.hidden, *task_copies())}
    return {
        "entries": entries,
        "masks": sorted(m for m in masks if any(inside(m, b) and m != b for b in bound)),
        "python": sys.executable,
        "interpreter": list(interpreter_paths()),
    }


def task_copies() -> tuple[Path, ...]:
    """Every folder of shipped tasks on this machine: the one in use and any other copy on the
    import path (an editable install also copies tasks/ into site-packages), all hidden from
    sandboxes because they hold hidden settings and private labels."""
    from mlsbench_env.spec import builtin_tasks_dir  # spec imports heavy modules; only when needed

    found = {builtin_tasks_dir().resolve()}
    checkout = project_checkout()
    if checkout:
        found.add(checkout / "tasks")
    for entry in sys.path:
        candidate = Path(entry or ".") / "mlsbench_env" / "tasks"
        if candidate.is_dir():
            found.add(candidate.resolve())
    return tuple(sorted(found))


def hidden_runs(runs_dir: str | Path | None) -> tuple[Path, ...]:
    """The runs folder as a path to hide from sandboxes (``sandbox_config``'s ``hidden_extra``):
    it holds other episodes' trajectories and scores. Nothing when there is none."""
    return (Path(runs_dir).resolve(),) if runs_dir else ()


def sandbox_config(
    task: Task,
    root: Path,
    hidden_extra: tuple[Path, ...] = (),
    gpus: int = 0,
    read_only: Iterable[Path] = (),
) -> SandboxConfig:
    """The sandbox of one of ``task``'s folders (an episode's, a test job's, a final run's):
    its limits, and what stays covered should it lie inside what the sandbox sees (every copy
    of the task definitions, the competition's source data, the runs folder)."""
    hidden = {
        *task_copies(),
        *task.hidden_sources(),
        *[p.resolve() for p in hidden_extra],
    }
    lim = task.spec.limits
    return SandboxConfig(
        root=root,
        readable=task.readable_sources(),
        read_only=tuple(read_only),
        hidden=tuple(sorted(hidden)),
        memory_mb=lim.memory_mb,
        processes=lim.processes,
        gpus=gpus,
        file_size_mb=lim.file_size_mb,
    )
