"""Many concurrent sessions through the OpenEnv server, next to `mlsbench serve` and the
in-process `EnvPool` (the baseline), measured in the same run.

    python benchmarks/bench_adapters.py [--task opt-evolution-strategy] [--sessions 64]
        [--steps 12] [--ramp-per-s 4] [--overhead-steps 200]

Each session resets, then cycles `view`, `edit` (the reference baseline's first edit) and
`shell` (`echo hi`): no tests. Reported per path: reset p50/p99 (from the request to the
prompt, so queueing and the start ramp count), steps/s over the stepping phase (all sessions
together) and the ratio to the in-process pool. Both servers run as `mlsbench serve` in their
own process on 127.0.0.1 with `--max-live` = sessions and the given ramp; the pool gets the same
limits. The per-step overhead is the median `view` step of one session through each server
minus the median in-process `view` step. Prints the machine's cores and load average: numbers
from a shared machine are only comparable at the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def actions(task) -> list[dict]:
    edit = next(
        a for a in BaselineAgent(task, task.spec.reference_baseline)._plan if a["tool"] == "edit"
    )
    view = {"tool": "view", "args": {"path": edit["args"]["path"]}}
    return [view, edit, {"tool": "shell", "args": {"command": "echo hi"}}]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`mlsbench serve` in its own process."""

    def __init__(self, protocol: str, task, sessions: int, ramp: float, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "mlsbench_env.cli", "serve", "--protocol", protocol]
        args += ["--port", str(self.port), "--max-live", str(sessions), "--ramp-per-s", str(ramp)]
        args += [
            "--runs-dir",
            str(tmp / f"runs-{protocol}"),
            "--work-dir",
            str(tmp / f"eps-{protocol}"),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(
                        f"mlsbench serve --protocol {protocol} did not start"
                    ) from None
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


async def drive(open_session, n: int, steps: int, plan: list[dict]) -> dict:
    """n sessions at once: open+reset each (timed), then `steps` steps each (timed together)."""

    async def start(i):
        t = time.perf_counter()
        s = await open_session(i)
        return s, time.perf_counter() - t

    started = await asyncio.gather(*(start(i) for i in range(n)))
    sessions, resets = [s for s, _ in started], [t for _, t in started]

    async def run(s):
        for k in range(steps):
            await s.step(plan[k % len(plan)])

    t = time.perf_counter()
    await asyncio.gather(*(run(s) for s in sessions))
    wall = time.perf_counter() - t
    await asyncio.gather(*(s.close() for s in sessions))
    return {
        "reset_p50": pct(resets, 0.5),
        "reset_p99": pct(resets, 0.99),
        "steps_s": n * steps / wall,
    }


class PoolSession:
    def __init__(self, aenv):
        self.aenv = aenv

    async def step(self, action):
        return await self.aenv.astep(json.dumps(action))

    async def close(self):
        await self.aenv.aclose()


class OpenEnvSession:
    def __init__(self, client):
        self.client = client

    async def step(self, action):
        return await self.client.step(action)

    async def close(self):
        await self.client.close()


def in_process(task, n, steps, ramp, tmp, plan):
    async def main():
        async with EnvPool(max_live=n, ramp_per_s=ramp or None) as pool:

            async def open_session(i):
                aenv = pool.make(task, runs_dir=None, work_dir=str(tmp / "eps-pool"))
                await aenv.areset(seed=i)
                return PoolSession(aenv)

            return await drive(open_session, n, steps, plan)

    return asyncio.run(main())


def through_mlsbench_serve(task, url, n, steps, plan):
    async def main():
        # RemoteEnv is blocking: drive it from threads (EnvPool.wrap), no limits of its own
        async with EnvPool(ramp_per_s=None, threads=2 * n) as pool:

            async def open_session(i):
                env = await asyncio.to_thread(RemoteEnv, task.id, url)
                aenv = pool.wrap(env)
                await aenv.areset(seed=i)
                return PoolSession(aenv)

            return await drive(open_session, n, steps, plan)

    return asyncio.run(main())


def through_openenv(task, url, n, steps, plan):
    from openenv.core.generic_client import GenericEnvClient

    async def main():
        async def open_session(i):
            c = GenericEnvClient(base_url=url, message_timeout_s=600)
            await c.reset(task=task.id, seed=i)
            return OpenEnvSession(c)

        return await drive(open_session, n, steps, plan)

    return asyncio.run(main())


def view_ms(step, repeats: int, action: dict) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step(action)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def overheads(task, servers: dict, repeats: int, tmp: Path, plan) -> dict:
    from openenv.core.generic_client import GenericEnvClient

    steps = {"max_steps": repeats + 10}  # never truncated while timed
    local = ResearchEnv(task, runs_dir=None, work_dir=str(tmp / "eps-one"), **steps)
    local.reset(seed=0)
    base = view_ms(lambda a: local.step(json.dumps(a)), repeats, plan[0])
    local.close()
    remote = RemoteEnv(task.id, servers["mlsbench"].url, **steps)
    remote.reset(seed=0)
    serve = view_ms(remote.step, repeats, plan[0])
    remote.close()
    with GenericEnvClient(base_url=servers["openenv"].url).sync() as c:
        c.reset(task=task.id, seed=0, **steps)
        oe = view_ms(c.step, repeats, plan[0])
    return {"in-process": base, "mlsbench serve": serve, "openenv": oe}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="opt-evolution-strategy")
    p.add_argument("--sessions", type=int, default=64)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--ramp-per-s", type=float, default=4.0, help="0: no start ramp")
    p.add_argument("--overhead-steps", type=int, default=200)
    a = p.parse_args()
    task = load_task(a.task)
    plan = actions(task)
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; task {task.id}; ")
    print(f"{a.sessions} sessions x {a.steps} steps (view/edit/shell), ramp {a.ramp_per_s}/s")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        servers = {
            proto: Served(proto, task, a.sessions, a.ramp_per_s, tmp)
            for proto in ("mlsbench", "openenv")
        }
        try:
            rows = {
                "in-process EnvPool": in_process(
                    task, a.sessions, a.steps, a.ramp_per_s, tmp, plan
                ),
                "mlsbench serve": through_mlsbench_serve(
                    task, servers["mlsbench"].url, a.sessions, a.steps, plan
                ),
                "OpenEnv server (/ws)": through_openenv(
                    task, servers["openenv"].url, a.sessions, a.steps, plan
                ),
            }
            one = overheads(task, servers, a.overhead_steps, tmp, plan)
        finally:
            for s in servers.values():
                s.stop()
    base = rows["in-process EnvPool"]["steps_s"]
    print("| path | reset p50 | reset p99 | steps/s | vs in-process |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(
            f"| {name} | {r['reset_p50'] * 1000:.0f} ms | {r['reset_p99'] * 1000:.0f} ms | "
            f"{r['steps_s']:.0f} | {r['steps_s'] / base:.2f}x |"
        )
    print(
        f"one session, median `view` step: in-process {one['in-process']:.2f} ms; "
        f"mlsbench serve +{one['mlsbench serve'] - one['in-process']:.2f} ms; "
        f"OpenEnv +{one['openenv'] - one['in-process']:.2f} ms"
    )


if __name__ == "__main__":
    main()
