"""The docker backend's container life cycle: pooled and cold starts, removal at close, pool
shutdown, and `mlsbench sandbox gc` (needs an engine and the image: marked docker)."""

import socket
import time
import uuid
from dataclasses import replace

import pytest
from test_sandbox_conformance import require  # tests/ is on sys.path under pytest

from mlsbench_env.sandbox import SandboxConfig

pytestmark = pytest.mark.docker


@pytest.fixture
def dk():
    require("docker")
    from mlsbench_env.sandbox import docker as dk

    return dk


def _config(parent, name=None):
    root = parent / (name or f"ep-{uuid.uuid4().hex[:8]}")
    root.mkdir(parents=True)
    return SandboxConfig(root=root, hidden=(parent,), memory_mb=512, processes=64)


def _opts(dk, **changes):
    return dk.DockerOptions.from_env().model_copy(update=changes)


def _exists(dk, cid) -> bool:
    return bool(dk.client().api.containers(all=True, filters={"id": cid}))


def test_pooled_start_takes_a_started_container_and_close_removes_it(dk, tmp_path):
    opts = _opts(dk, pool_size=2)
    first = _config(tmp_path / "eps")
    assert dk.warm_pool(first, opts, wait_s=90) == 2
    t = time.perf_counter()
    sb = dk.DockerSandbox(first, opts)
    took = time.perf_counter() - t
    other = dk.DockerSandbox(_config(tmp_path / "eps"), opts)
    try:
        assert sb.pooled and other.pooled and sb.container_id != other.container_id
        assert took < 1.0  # no container start on this path (measured: ~10 ms)
        r = sb.exec(f"pwd; ls {first.root.parent}; touch mine", timeout=10)
        assert r.output.split() == [str(first.root), first.root.name]  # not the neighbour
        assert (first.root / "mine").exists()
    finally:
        cid = sb.container_id
        sb.close()
        other.close()
    assert not _exists(dk, cid)


def test_cold_start_without_a_pool(dk, tmp_path):
    sb = dk.DockerSandbox(_config(tmp_path / "eps"), _opts(dk, pool_size=0))
    try:
        assert not sb.pooled
        assert sb.exec("echo cold", timeout=10).output.strip() == "cold"
    finally:
        cid = sb.container_id
        sb.close()
    assert not _exists(dk, cid)


def test_shutdown_removes_pooled_containers(dk, tmp_path):
    opts = _opts(dk, pool_size=1)
    cfg = _config(tmp_path / "eps")
    assert dk.warm_pool(cfg, opts, wait_s=90) == 1
    from mlsbench_env.sandbox.docker import pool

    ids = [c.id for p in pool._POOLS.values() for c in p.ready]
    assert ids
    dk.shutdown_pools()
    assert not any(_exists(dk, cid) for cid in ids)


def test_gc_removes_containers_of_dead_owners_only(dk, tmp_path):
    from mlsbench_env.sandbox.docker.container import create
    from mlsbench_env.sandbox.docker.shape import shape_of

    live = dk.DockerSandbox(_config(tmp_path / "eps"), _opts(dk, pool_size=0))
    shape = shape_of(_config(tmp_path / "eps"), _opts(dk))
    dead_owner = f"{socket.gethostname()}:999999999:0"
    orphan = create(
        replace(shape, root=str(tmp_path / "eps"), labels=(("mlsbench.owner", dead_owner),))
    )
    try:
        removed = dk.gc()
        assert orphan.id[:12] in removed and live.container_id[:12] not in removed
        assert not _exists(dk, orphan.id) and _exists(dk, live.container_id)
    finally:
        orphan.channel.close()
        live.close()


def test_cli_gc_and_info(dk):
    from typer.testing import CliRunner

    from mlsbench_env.cli import app

    out = CliRunner().invoke(app, ["sandbox", "gc"])
    assert out.exit_code == 0 and "removed" in out.output
    out = CliRunner().invoke(app, ["sandbox", "info"])
    assert out.exit_code == 0 and "GPUs:" in out.output and "mlsbench-sandbox:" in out.output
