"""The local backend against real processes (no mocks). Namespace-dependent checks skip where
the kernel does not allow namespaces."""

import os
from pathlib import Path

import pytest

from mlsbench_env.sandbox import SandboxConfig, make_sandbox
from mlsbench_env.sandbox.local import namespace_prefix

NAMESPACES = namespace_prefix() is not None
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="no user/net/pid namespaces here")


@pytest.fixture
def box(tmp_path):
    root = tmp_path / "episode"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "hidden.txt").write_text("hidden-setting-label")
    sb = make_sandbox(
        "local",
        SandboxConfig(root=root, hidden=(secret,), memory_mb=512, processes=64, file_size_mb=1),
    )
    yield sb, root, secret
    sb.close()


def test_exec_output_exit_code_and_usage(box):
    sb, root, _ = box
    r = sb.exec("echo hello; echo err >&2; exit 3", timeout=10)
    assert r.returncode == 3 and "hello" in r.output and "err" in r.output
    assert r.wall_s > 0 and r.killed is None
    r = sb.exec("pwd", timeout=10)
    assert r.output.strip() == str(root)


def test_timeout_kills_the_process_group(box):
    sb, _, _ = box
    r = sb.exec("sleep 30 & sleep 30; echo never", timeout=1)
    assert r.timed_out and "timeout" in r.killed and r.wall_s < 5
    assert "never" not in r.output


def test_output_is_capped_head_and_tail(box):
    sb, _, _ = box
    r = sb.exec("seq 1 200000", timeout=10, max_output_bytes=2000)
    assert r.dropped_bytes > 0 and r.output.startswith("1\n") and "200000" in r.output
    assert "omitted" in r.output and len(r.output) < 3000


def test_memory_limit_stops_a_hog(box):
    sb, _, _ = box
    r = sb.exec("python -c 'x = bytearray(2 * 1024**3); print(len(x))'", timeout=30)
    assert r.returncode != 0 and "MemoryError" in r.output


def test_file_size_limit(box):
    sb, _, _ = box
    r = sb.exec("head -c 5000000 /dev/zero > big.bin", timeout=10)
    assert r.returncode != 0
    assert "File size limit exceeded" in r.output or "File too large" in r.output


@needs_ns
@pytest.mark.skipif(os.geteuid() != 0, reason="per-sandbox uid (process limit) needs root")
def test_process_limit_contains_a_fork_bomb(box):
    sb, _, _ = box
    r = sb.exec("for i in $(seq 200); do sleep 5 & done; wait", timeout=10)
    assert "Resource temporarily unavailable" in r.output or "retry" in r.output
    r = sb.exec("echo alive", timeout=10)
    assert r.output.strip() == "alive"


@needs_ns
def test_no_network(box):
    sb, _, _ = box
    r = sb.exec(
        "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), 2)\"", timeout=20
    )
    assert r.returncode != 0 and ("unreachable" in r.output or "Errno" in r.output)


@needs_ns
def test_own_pid_space_and_no_stray_processes(box):
    sb, _, _ = box
    sb.exec("sleep 60 &", timeout=5)
    r = sb.exec("ps -e -o comm=", timeout=5)
    assert "sleep" not in r.output
    assert len(r.output.split()) < 6  # executor, bash, ps: not the host's processes


@needs_ns
def test_hidden_paths_are_empty_inside(box):
    sb, _, secret = box
    r = sb.exec(
        f"ls -A {secret}; cat {secret}/hidden.txt; "
        f"grep -rl hidden-setting-label {secret.parent} /tmp 2>/dev/null; echo done",
        timeout=30,
    )
    assert not r.timed_out and r.output.rstrip().endswith("done")
    assert "hidden-setting-label" not in r.output


@needs_ns
@pytest.mark.skipif(os.geteuid() != 0, reason="unprivileged uid only when started as root")
def test_writes_outside_the_workspace_are_refused(box):
    sb, root, _ = box
    sb.exec("touch /etc/mlsbench-escape; touch /usr/mlsbench-escape; touch ok", timeout=5)
    assert not Path("/etc/mlsbench-escape").exists()
    assert not Path("/usr/mlsbench-escape").exists()
    assert (root / "ok").exists()


def test_close_is_idempotent_and_isolation_reported(box):
    sb, _, _ = box
    iso = sb.isolation()
    assert set(iso) == {"network", "pid", "mounts", "user", "limits"}
    assert iso["network"] == NAMESPACES
    sb.close()
    sb.close()
