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

And the kit's allocator thresholds (``taskkit.child.MALLOC_ENV``, set in every child and, through
mallopt, in the parent): a loop that allocates, fills and frees four 3.2 MB arrays per step (what a
torch harness does with its per-step tensors), in fresh interpreters with and without them, CPU
seconds (user + system) compared. Target: the thresholds at least 1.5x cheaper.
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
ALLOCATE = """
import resource, numpy as np
for _ in range(500):
    # a step's temporaries: four 3.2 MB arrays live at once (above glibc's default thresholds)
    a = [np.ones(800_000, np.float32) for _ in range(4)]
    del a
u = resource.getrusage(resource.RUSAGE_SELF)
print(u.ru_utime + u.ru_stime)
"""


def allocation_cpu(env: dict[str, str]) -> float:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", ALLOCATE], env={**base, **env}, capture_output=True, text=True
    )
    return float(out.stdout)


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
    from taskkit.child import MALLOC_ENV

    plain = statistics.median(allocation_cpu({}) for _ in range(3))
    kept = statistics.median(allocation_cpu(MALLOC_ENV) for _ in range(3))
    print(
        f"500 steps allocating 4 x 3.2 MB: {plain:.2f} s CPU with glibc's defaults, {kept:.2f} s "
        f"with the kit's thresholds: {plain / kept:.1f}x; target >= 1.5x"
    )


if __name__ == "__main__":
    main()
