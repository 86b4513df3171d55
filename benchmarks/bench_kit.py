"""What the task kit's privilege drop costs per child start, against the child start itself.

    python benchmarks/bench_kit.py [--repeats 30]

A task folder like a workspace's (the kit as ``taskkit/``, a fixed module, an agent module) in a
temporary folder; then, in the same run:
- a whole child start: ``Child(...)`` to its first frame and ``close()`` (a fresh interpreter,
  numpy imported by the fixed module, the drop, the guard, the agent's import), median;
- the drop alone, timed inside fresh interpreters that imported numpy first: finding the data
  sets packages ship, Landlock's ruleset over the interpreter's folders with those cut out,
  ``no_new_privs``, ``restrict_self`` (and, as root, the uid or capability change), the guard,
  median.
Target: the drop under 20 ms per child start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsbench_env.spec import kit_files

FIXED = """
import numpy as np

def run(conn):
    import agent
    conn.send_bytes(b"R" + agent.answer().encode())
"""
AGENT = 'def answer():\n    return "ok"\n'
DROP_ONLY = """
import os, sys, tempfile, time
sys.path.insert(0, ".")
import numpy
from taskkit import guard, privilege
from multiprocessing.connection import Connection
conn = Connection(os.open(os.devnull, os.O_WRONLY))
scratch = tempfile.mkdtemp()
t = time.perf_counter_ns()
deny = privilege.packaged_data()
level = privilege.drop([os.path.abspath("agent.py")], [scratch], ["."], deny)
guard.install(conn, ".", ["agent.py"], scratch, deny)
print(time.perf_counter_ns() - t, level)
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-kit-"))
    for rel, src in kit_files().items():
        (work / rel).parent.mkdir(exist_ok=True)
        (work / rel).write_bytes(src.read_bytes())
    (work / "fixed.py").write_text(FIXED)
    (work / "agent.py").write_text(AGENT)
    os.chdir(work)
    sys.path.insert(0, str(work))
    from taskkit import Child

    starts = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        with Child("fixed:run", may_read=["agent.py"]) as child:
            assert child.recv() == b"Rok"
            level = child.isolation
        starts.append((time.perf_counter() - t) * 1000)
    drops = []
    for _ in range(a.repeats):
        out = subprocess.run(
            [sys.executable, "-c", DROP_ONLY], capture_output=True, text=True, check=True
        ).stdout.split()
        drops.append(int(out[0]) / 1e6)
    start, drop = statistics.median(starts), statistics.median(drops)
    print(f"isolation reached: {level}")
    print(f"child start (Child() to its first frame, close): {start:.1f} ms median")
    print(
        f"privilege drop + guard inside it: {drop:.2f} ms median (max {max(drops):.2f}), "
        f"{100 * drop / start:.1f} % of a child start; target < 20 ms"
    )


if __name__ == "__main__":
    main()
