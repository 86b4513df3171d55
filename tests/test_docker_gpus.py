"""GPU allocation, sampling and charging for the docker backend (no engine or GPU needed: the
GPU list and nvidia-smi are injected)."""

import subprocess
import sys
from dataclasses import replace

import pytest

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox import ExecResult, SandboxConfig
from mlsbench_env.sandbox.gpus import GpuAllocator, GpuSampler, describe, discover, parse_smi


def test_concurrent_leases_get_distinct_gpus_and_release_them(tmp_path):
    alloc = GpuAllocator(["0", "1", "2"], lock_dir=tmp_path)
    a, b = alloc.acquire(2), alloc.acquire(1)
    assert set(a.ids) | set(b.ids) == {"0", "1", "2"} and not set(a.ids) & set(b.ids)
    with pytest.raises(SandboxError, match=r"1 GPU\(s\) requested, but only 0 of the 3 GPUs"):
        alloc.acquire(1)
    a.release()
    assert sorted(alloc.acquire(2).ids) == sorted(a.ids)


def test_leases_are_exclusive_across_processes(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mlsbench_env.sandbox.gpus import GpuAllocator; "
            f"lease = GpuAllocator(['0', '1'], lock_dir={str(tmp_path)!r}).acquire(1); "
            "print(lease.ids[0], flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = holder.stdout.readline().strip()
        mine = GpuAllocator(["0", "1"], lock_dir=tmp_path).acquire(1)
        assert mine.ids and mine.ids[0] != held
        mine.release()
    finally:
        holder.kill()
        holder.wait()
    # a holder that dies (here: killed) frees its GPU
    assert len(GpuAllocator(["0", "1"], lock_dir=tmp_path).acquire(2).ids) == 2


def test_no_gpu_host_refuses_gpu_sandboxes_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSBENCH_GPUS", "none")
    discover.cache_clear()
    try:
        assert discover()[0] == ()
        assert "none on this host" in describe()
        with pytest.raises(SandboxError, match="2 GPU.*requested, but GPUs: none on this host"):
            GpuAllocator(lock_dir=tmp_path).acquire(2)
        assert GpuAllocator(lock_dir=tmp_path).acquire(0).ids == []  # CPU episodes go on
        pytest.importorskip("docker")
        from mlsbench_env.sandbox.docker import DockerSandbox

        with pytest.raises(SandboxError, match="none on this host"):
            DockerSandbox(SandboxConfig(root=tmp_path, gpus=1))
    finally:
        discover.cache_clear()


def test_smi_parsing_and_sampling():
    text = "0, 87, 40321\n1, 13, 1200\n2, [N/A], 5\ngarbage\n"
    assert parse_smi(text) == {"0": (87.0, 40321.0), "1": (13.0, 1200.0)}
    answers = iter(["0, 50, 1000\n1, 70, 3000\n", "0, 90, 2000\n1, 10, 500\n"] * 10)
    with GpuSampler(["0", "1"], interval_s=0.01, query=lambda ids: next(answers)) as s:
        pass
    assert s.samples and s.mean_util == pytest.approx(55.0, abs=25) and s.peak_mem_mb >= 2500
    with GpuSampler(["0"], interval_s=0.01, query=lambda ids: "") as s:
        pass
    assert s.mean_util is None and s.peak_mem_mb is None


def test_compute_is_charged_in_gpu_seconds():
    assert ExecResult(0, "", wall_s=10.0).compute_s == 10.0
    assert ExecResult(0, "", wall_s=10.0, gpus=4).compute_s == 40.0


def test_gpu_containers_request_their_devices_and_skip_the_pool(tmp_path):
    pytest.importorskip("docker")
    from mlsbench_env.sandbox.docker import DockerOptions
    from mlsbench_env.sandbox.docker.shape import Shape, host_config_args, pooled_shape

    shape = Shape(
        image="x",
        readable=(),
        writable=(),
        hidden_inside=(),
        memory_mb=512,
        processes=64,
        network=False,
        options=DockerOptions(cpus=1.0, tmp_mb=64, shm_mb=64, memory_headroom_mb=64),
        gpu_ids=("1", "3"),
        root=str(tmp_path),
    )
    args = host_config_args(shape)
    (request,) = args["device_requests"]
    assert request["DeviceIDs"] == ["1", "3"] and request["Capabilities"] == [["gpu"]]
    opts = DockerOptions(pool_size=4)
    assert pooled_shape(shape, tmp_path / "ep", opts) is None
    cpu = pooled_shape(replace(shape, gpu_ids=()), tmp_path / "ep", opts)
    assert cpu is not None and cpu.stage == str(tmp_path)
    assert host_config_args(cpu)["device_requests"] is None


def test_a_command_reaches_the_container_executor_as_one_request(tmp_path, monkeypatch):
    pytest.importorskip("docker")
    from mlsbench_env.sandbox.docker import DockerSandbox
    from mlsbench_env.sandbox.docker.backend import OOM_PREFIX
    from mlsbench_env.sandbox.docker.container import CONTAINER_PATH

    class Channel:
        sent: list = []

        def send(self, request):
            self.sent.append(request)

        def recv(self, timeout):
            answer = dict(rc=0, output="hi\n", wall_s=2.0, cpu_s=0.1, max_rss_mb=5.0)
            return answer | dict(timed_out=False, killed=None, dropped_bytes=0)

        def close(self):
            pass

    class Container:
        channel, id, landlock = Channel(), "c1", False

        def remove(self):
            pass

    monkeypatch.setattr(DockerSandbox, "_start", lambda self, root: Container())
    sb = DockerSandbox(SandboxConfig(root=tmp_path, env={"A": "1"}, memory_mb=100))
    result = sb.exec("echo hi", timeout=5, cwd="sub", env={"B": "2"}, secrets={"K": "v"})
    sb.close()
    assert result.output == "hi\n" and sb.compute_s == 2.0
    (request,) = Channel.sent
    assert request["cmd"] == OOM_PREFIX + "echo hi"
    assert request["cwd"] == str(tmp_path / "sub") and request["timeout"] == 5
    assert request["env"] == {"PATH": CONTAINER_PATH, "A": "1", "B": "2"}
    assert request["secrets"] == {"K": "v"} and request["limits"]["memory_mb"] == 100
