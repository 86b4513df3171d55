"""RL-scale numbers: episodes/hour with the async pool vs sequential, the env server's per-step
overhead vs an in-process step, and snapshot/restore time of a task's workspace.

    python benchmarks/bench_rl.py [--task opt-evolution-strategy] [--episodes 4]
        [--think-s 0 5] [--steps 200] [--skip-episodes]

Episodes are scripted: the task's reference baseline (its edits, one `test`, `submit`), with
``final_seeds=(0,)``. ``--think-s`` adds a pause before every action, standing in for the
policy's generation time (time.sleep when sequential, asyncio.sleep in the pool): the pool
overlaps one episode's thinking with another's experiments. The pool runs with
``max_experiments`` = the machine's cores. The server runs as ``mlsbench serve`` in its own
process on 127.0.0.1 and is driven by ``RemoteEnv``; its overhead is the median `view` step
through it minus the median in-process `view` step. Prints the machine's cores and load
average: numbers from a shared machine are only comparable with the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsbench_env.env import ResearchEnv
from mlsbench_env.episode import BaselineAgent
from mlsbench_env.scale.client import RemoteEnv
from mlsbench_env.scale.pool import EnvPool
from mlsbench_env.spec import load_task


def plan(task) -> list[dict]:
    agent = BaselineAgent(task, task.spec.reference_baseline)
    return list(agent._plan)  # edits, test, submit


def options(tmp: Path) -> dict:
    return {"runs_dir": None, "work_dir": str(tmp / "eps"), "final_seeds": (0,)}


def sequential(task, n: int, think_s: float, tmp: Path) -> float:
    started = time.perf_counter()
    for _ in range(n):
        env = ResearchEnv(task, **options(tmp))
        env.reset(seed=0)
        for action in plan(task):
            time.sleep(think_s)
            env.step(json.dumps(action))
        env.close()
    return time.perf_counter() - started


def pooled(task, n: int, think_s: float, tmp: Path) -> float:
    async def episode(env):
        await env.areset(seed=0)
        for action in plan(task):
            await asyncio.sleep(think_s)
            await env.astep(json.dumps(action))

    async def main():
        async with EnvPool(max_experiments=os.cpu_count()) as pool:
            envs = [pool.make(task, **options(tmp)) for _ in range(n)]
            started = time.perf_counter()
            await asyncio.gather(*(episode(e) for e in envs))
            return time.perf_counter() - started

    return asyncio.run(main())


def median_ms(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_overhead(task, steps: int, tmp: Path) -> tuple[float, float]:
    file = task.regions[0].file
    view = json.dumps({"tool": "view", "args": {"path": file}})
    local = ResearchEnv(task, runs_dir=None, work_dir=str(tmp / "eps"), max_steps=10**6)
    local.reset(seed=0)
    local_ms = median_ms(lambda: local.step(view), steps)
    local.close()
    port = free_port()
    cmd = [sys.executable, "-m", "mlsbench_env.cli", "serve", "--port", str(port)]
    cmd += ["--runs-dir", str(tmp / "runs"), "--work-dir", str(tmp / "srv-eps")]
    if not task.root.is_relative_to(Path(__file__).resolve().parents[1] / "tasks"):
        cmd += ["--task", str(task.root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        remote = RemoteEnv(task.id, f"http://127.0.0.1:{port}", max_steps=10**6)
        remote.reset(seed=0)
        remote_ms = median_ms(lambda: remote.step(view), steps)
        remote.close()
    finally:
        proc.terminate()
        proc.wait(30)
    return local_ms, remote_ms


def snapshot_times(task, repeats: int, tmp: Path) -> tuple[float, float, int]:
    env = ResearchEnv(task, runs_dir=None, work_dir=str(tmp / "eps"))
    env.reset(seed=0)
    snap = env.snapshot()
    snap_ms = median_ms(env.snapshot, repeats)
    restore_ms = median_ms(lambda: env.restore(snap), repeats)
    env.close()
    return snap_ms, restore_ms, snap.nbytes


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="opt-evolution-strategy")
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--think-s", type=float, nargs="*", default=[0.0, 5.0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--skip-episodes", action="store_true")
    a = p.parse_args()
    task = load_task(a.task)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    os.environ.setdefault("MLSBENCH_SLOTS_DIR", str(tmp / "slots"))
    print(f"$ python benchmarks/bench_rl.py {' '.join(sys.argv[1:])}")
    print(f"task {task.id}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    try:
        local_ms, remote_ms = server_overhead(task, a.steps, tmp)
        print(
            f"view step: in-process {local_ms:.2f} ms, through `mlsbench serve` "
            f"{remote_ms:.2f} ms -> server overhead {remote_ms - local_ms:.2f} ms per step"
        )
        snap_ms, restore_ms, nbytes = snapshot_times(task, 50, tmp)
        print(
            f"snapshot {snap_ms:.2f} ms, restore {restore_ms:.2f} ms "
            f"(workspace {nbytes / 1024:.0f} KiB)"
        )
        if a.skip_episodes:
            return
        for think in a.think_s:
            seq = sequential(task, a.episodes, think, tmp)
            pool = pooled(task, a.episodes, think, tmp)
            print(
                f"{a.episodes} episodes, think {think:g} s/action: sequential "
                f"{a.episodes * 3600 / seq:.0f} episodes/h ({seq:.0f} s), async pool "
                f"{a.episodes * 3600 / pool:.0f} episodes/h ({pool:.0f} s): x{seq / pool:.2f}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
