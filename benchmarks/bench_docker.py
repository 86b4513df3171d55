"""Speed of the docker backend, as ratios to a raw `docker exec` measured in the same run.

    python benchmarks/bench_docker.py [--repeats 30] [--task opt-evolution-strategy]

Needs a running engine and the built image (`mlsbench images build`). Prints, as medians:
- a raw `docker exec` of a command in a running container, through the SDK (exec_create +
  exec_start, what `container.exec_run` does) and through the CLI;
- a sandbox step (`DockerSandbox.exec`) of the same command in the same container;
- sandbox start-up: cold (create + start + attach, `pool_size=0`) and pooled (a started
  container taken from the pool and attached to the new root), and a raw container
  create + start + remove for reference;
- a whole `env.reset()` with sandbox="docker" (workspace copy + pooled sandbox) and with "local".
Targets (issue 7): pooled reset < 50 ms; a step <= 0.15 x a raw `docker exec`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlsbench_env.sandbox import SandboxConfig
from mlsbench_env.sandbox.docker import (
    DockerOptions,
    DockerSandbox,
    client,
    resolve_image,
    warm_pool,
)

COMMAND = "echo hello"


def median_ms(fn, repeats: int, between=None) -> float:
    samples = []
    for _ in range(repeats):
        if between:
            between()
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--task", default="opt-evolution-strategy")
    p.add_argument("--skip-env", action="store_true", help="skip the env.reset() figures")
    a = p.parse_args()
    api = client().api
    base = DockerOptions.from_env()  # MLSBENCH_DOCKER_IMAGE etc. apply
    image = resolve_image(base)
    tmp = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    parent = tmp / "episodes"
    parent.mkdir()
    n = [0]

    def config() -> SandboxConfig:
        n[0] += 1
        root = parent / f"ep-{n[0]}"
        root.mkdir()
        return SandboxConfig(root=root, hidden=(parent,), memory_mb=1024, processes=128)

    rows: list[tuple[str, float]] = []
    try:
        # ---- step vs raw docker exec, same container, same command
        sb = DockerSandbox(config(), base.model_copy(update={"pool_size": 0}))
        cid = sb.container_id

        def raw_sdk():
            e = api.exec_create(cid, ["bash", "-c", COMMAND], user=f"{sb.uid}:{sb.gid}")
            api.exec_start(e["Id"])

        def raw_cli():
            subprocess.run(["docker", "exec", cid, "bash", "-c", COMMAND], capture_output=True)

        for fn in (raw_sdk, lambda: sb.exec(COMMAND, timeout=10)):
            fn()  # warm up
        rows.append(("raw docker exec (SDK exec_create+exec_start)", median_ms(raw_sdk, a.repeats)))
        if shutil.which("docker"):
            rows.append(("raw docker exec (CLI)", median_ms(raw_cli, max(a.repeats // 3, 5))))
        step = median_ms(lambda: sb.exec(COMMAND, timeout=10), a.repeats)
        rows.append(("sandbox step (executor over the attach stream)", step))
        sb.close()

        # ---- start-up: raw, cold, pooled
        def raw_container():
            c = api.create_container(image, ["true"], host_config=api.create_host_config())
            api.start(c["Id"])
            api.remove_container(c["Id"], force=True)

        rows.append(("raw container create+start+remove", median_ms(raw_container, 5)))
        cold = []
        for _ in range(max(a.repeats // 3, 5)):
            cfg = config()
            t = time.perf_counter()
            s = DockerSandbox(cfg, base.model_copy(update={"pool_size": 0}))
            cold.append((time.perf_counter() - t) * 1000)
            s.close()
        rows.append(("sandbox start, cold (pool_size=0)", statistics.median(cold)))

        opts = base.model_copy(update={"pool_size": 2})
        pooled = []
        for _ in range(a.repeats):
            cfg = config()
            warm_pool(cfg, opts, wait_s=60)  # refilling is background work, off the reset path
            t = time.perf_counter()
            s = DockerSandbox(cfg, opts)
            pooled.append((time.perf_counter() - t) * 1000)
            assert s.pooled
            s.close()
        rows.append(("sandbox start, pooled (take + attach)", statistics.median(pooled)))

        if not a.skip_env:
            rows += env_resets(a.task, a.repeats, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    raw = rows[0][1]
    print(f"$ python {' '.join(sys.argv)}")
    print(f"command: {COMMAND!r}; medians; ratio = time / raw docker exec (SDK) in this run")
    for name, ms in rows:
        print(f"{name:55s} {ms:9.2f} ms   {ms / raw:6.3f} x")
    pooled_ms = dict(rows)["sandbox start, pooled (take + attach)"]
    print(
        f"targets: pooled start < 50 ms: {'met' if pooled_ms < 50 else 'MISSED'}; "
        f"step <= 0.15 x raw exec: {'met' if step <= 0.15 * raw else 'MISSED'} "
        f"({step / raw:.3f} x)"
    )


def env_resets(task: str, repeats: int, tmp: Path) -> list[tuple[str, float]]:
    from mlsbench_env.env import ResearchEnv

    rows = []
    for backend in ("local", "docker"):
        env = ResearchEnv(task, sandbox=backend, runs_dir=None, work_dir=str(tmp / backend))
        env.reset(seed=0)  # warm: first docker reset is cold and fills the pool
        time.sleep(3)
        samples = []
        for i in range(max(repeats // 3, 5)):
            t = time.perf_counter()
            env.reset(seed=i)
            samples.append((time.perf_counter() - t) * 1000)
            time.sleep(1.5)  # let the pool refill, as an agent's episode would
        env.close()
        rows.append((f"env.reset() with sandbox={backend!r}", statistics.median(samples)))
    return rows


if __name__ == "__main__":
    main()
