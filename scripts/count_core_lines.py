#!/usr/bin/env python3
"""Line counts (as `wc -l` counts them) of the core of mlsbench_env: what an episode needs to run
and score, without the agents, the scale-out, the analysis, the CLI and the adapters.

    python scripts/count_core_lines.py [--max 4000] [--package PATH]

Exits 1 when the total is over --max.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# (name, paths inside the package): a folder counts its .py files, recursively
CORE: list[tuple[str, list[str]]] = [
    ("spec/", ["spec"]),
    ("workspace/", ["workspace"]),
    (
        "sandbox/ (protocol, visibility, local)",
        ["sandbox/__init__.py", "sandbox/visibility.py", "sandbox/local.py"],
    ),
    ("evaluation/ (policy included)", ["evaluation"]),
    ("scoring.py", ["scoring.py"]),
    ("tools/ (without background jobs)", ["tools"]),
    ("env/ (without background jobs)", ["env"]),
    ("episode.py", ["episode.py"]),
]
EXCLUDED = {"tools/jobs.py", "env/background.py"}


def lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))


def files(package: Path, entry: str) -> list[Path]:
    """The .py files of one entry; [] when it does not exist (a module moved or renamed)."""
    path = package / entry
    if path.is_dir():
        found = sorted(path.rglob("*.py"))
        return [p for p in found if p.relative_to(package).as_posix() not in EXCLUDED]
    return [path] if path.is_file() else []


def main() -> int:
    here = Path(__file__).resolve().parents[1] / "mlsbench_env"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=4000, help="Most lines the core may have.")
    parser.add_argument("--package", type=Path, default=here, help="The mlsbench_env folder.")
    args = parser.parse_args()
    total = 0
    for name, entries in CORE:
        found: list[Path] = []
        missing = []
        for entry in entries:
            got = files(args.package, entry)
            found += got
            missing += [] if got else [entry]
        n = sum(lines(p) for p in found)
        total += n
        note = f"  (not found: {', '.join(missing)})" if missing else ""
        print(f"{n:6d}  {name}, {len(found)} file(s){note}")
    print(f"{total:6d}  total (limit {args.max})")
    if total > args.max:
        print(f"over the limit by {total - args.max} lines", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
