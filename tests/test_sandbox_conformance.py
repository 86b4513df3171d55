"""One conformance suite for every sandbox backend: plain test functions, parametrized over
the backends, against real processes and containers (no mocks).

Every check runs on every backend. What a backend cannot do is listed in ``KNOWN_FAILURES``
with the reason (the test still runs, as a strict expected failure: a fix shows as a failure
that asks to take the entry out), and what the host cannot
provide (namespaces, root, a Docker engine, the built image) skips with the reason. The docker
cases are marked ``docker``: `pytest -m docker` runs them (set MLSBENCH_REQUIRE_DOCKER=1 to make
a missing engine or image an error instead of a skip, as CI does).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from functools import cache
from pathlib import Path

import pytest

from mlsbench_env.sandbox import SandboxConfig, make_sandbox
from mlsbench_env.sandbox.local import EXECUTOR, namespace_prefix

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
]
KNOWN_FAILURES = {
    ("local", "test_memory_bomb_over_many_processes"): (
        "the local backend bounds each process with rlimits but has no cgroup bounding their "
        "sum (the bomb holds 2.4 GB of the host's memory for two seconds)"
    ),
}
NAMESPACES = namespace_prefix() is not None
ROOT = os.geteuid() == 0
HIDDEN_WORD = "hidden-setting-label"


@cache
def docker_unavailable() -> str | None:
    """Why the docker backend cannot run here, or None."""
    try:
        from mlsbench_env import images
        from mlsbench_env.sandbox.docker import DockerOptions, client
    except ImportError as e:
        return f"the docker SDK is not installed ({e}): pip install 'mlsbench-env[docker]'"
    try:
        c = client()
    except Exception as e:
        return f"no Docker engine reachable: {e}"
    tag = DockerOptions.from_env().image or images.sandbox_tag()
    if not images.exists(tag, c):
        return f"the sandbox image {tag} is not built: run `mlsbench images build`"
    return None


def known_failure(request, backend: str) -> None:
    """Mark a known failure of ``backend`` as a strict expected failure; its body still runs."""
    reason = KNOWN_FAILURES.get((backend, request.node.originalname))
    if reason:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def require(backend: str, *, namespaces: bool = False, root: bool = False) -> None:
    """Skip what this host cannot provide for ``backend``."""
    if backend == "docker":
        why = docker_unavailable()
        if why and os.environ.get("MLSBENCH_REQUIRE_DOCKER"):
            pytest.fail(f"MLSBENCH_REQUIRE_DOCKER is set but {why}")
        if why:
            pytest.skip(why)
    if backend == "local" and namespaces and not NAMESPACES:
        pytest.skip("no user/net/pid/mount namespaces here (util-linux unshare failed)")
    if backend == "local" and root and not ROOT:
        pytest.skip("the local backend's private uid (and so its process limit) needs root")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Roots share one parent across the module, as an env's episodes do (the docker pool is
    keyed by it); task data sits in a hidden folder with a readable repo inside."""
    base = tmp_path_factory.mktemp("conformance")
    episodes = base / "episodes"
    episodes.mkdir()
    neighbour = episodes / "ep-neighbour"
    neighbour.mkdir()
    (neighbour / "notes.txt").write_text(HIDDEN_WORD)
    tasks = base / "tasks"
    (tasks / "repo").mkdir(parents=True)
    (tasks / "repo" / "data.txt").write_text("public data\n")
    (tasks / "hidden").mkdir()
    (tasks / "hidden" / "settings.txt").write_text(HIDDEN_WORD)
    secret = base / "secret"
    secret.mkdir()
    (secret / "hidden.txt").write_text(HIDDEN_WORD)
    return base


@pytest.fixture(params=BACKENDS)
def box(request, shared):
    backend = request.param
    require(backend)
    known_failure(request, backend)
    root = shared / "episodes" / f"ep-{uuid.uuid4().hex[:8]}"
    (root / "sub").mkdir(parents=True)
    root.chmod(0o700)  # as tempfile.mkdtemp makes final evaluations' roots
    config = SandboxConfig(
        root=root,
        readable=(shared / "tasks" / "repo",),
        hidden=(shared / "tasks", shared / "episodes", shared / "secret"),
        memory_mb=512,
        processes=64,
        file_size_mb=1,
    )
    sb = make_sandbox(backend, config)
    sb.backend = backend
    yield sb
    sb.close()


def host_processes(marker: str) -> list[str]:
    """Processes anywhere on the host (containers included) whose command line has marker."""
    out = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eww" not in line]


def wait_until(predicate, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# ---------------------------------------------------------------------------- running commands
def test_exec_output_exit_code_and_usage(box):
    r = box.exec("echo hello; echo err >&2; exit 3", timeout=10)
    assert r.returncode == 3 and "hello" in r.output and "err" in r.output
    assert r.wall_s > 0 and r.killed is None and not r.ok
    assert r.compute_s == pytest.approx(r.wall_s)  # CPU sandbox: wall x 1
    r = box.exec("pwd", timeout=10)
    assert r.output.strip() == str(box.config.root) and r.ok


def test_env_and_cwd(box):
    r = box.exec("echo $GREETING; pwd", timeout=10, cwd="sub", env={"GREETING": "hi there"})
    assert r.output.split("\n")[:2] == ["hi there", str(box.config.root / "sub")]
    r = box.exec("python -c 'import numpy, sys; print(sys.version_info[:2])'", timeout=60)
    assert r.ok and "(3, 11)" in r.output, r.output


def test_timeout_kills_the_process_group_and_keeps_partial_output(box):
    r = box.exec("echo started; sleep 30 & sleep 30; echo never", timeout=1)
    assert r.timed_out and "timeout" in r.killed and r.wall_s < 5
    assert "started" in r.output and "never" not in r.output
    assert box.exec("echo alive", timeout=10).output.strip() == "alive"


def test_output_is_capped_head_and_tail(box):
    r = box.exec("seq 1 200000", timeout=10, max_output_bytes=2000)
    assert r.dropped_bytes > 0 and r.output.startswith("1\n") and "200000" in r.output
    assert "omitted" in r.output and len(r.output) < 3000


# ---------------------------------------------------------------------------- limits and bombs
def test_memory_limit_stops_a_hog(box):
    r = box.exec("python -c 'x = bytearray(2 * 1024**3); print(len(x))'", timeout=30)
    assert r.returncode != 0 and "MemoryError" in r.output


def test_memory_bomb_over_many_processes(box):
    # each process stays under the per-process limit (512 MB); together they exceed the sandbox
    hog = "python -c \"x = b'x' * (400 * 1024**2); import time; time.sleep(2); print('held')\""
    r = box.exec(f"for i in 1 2 3 4 5 6; do {hog} & done; wait; echo finished", timeout=60)
    assert [line.strip() for line in r.output.splitlines()].count("held") < 6, r.output
    assert box.exec("echo alive", timeout=10).output.strip() == "alive"


def test_file_size_limit(box):
    r = box.exec("head -c 5000000 /dev/zero > big.bin", timeout=10)
    assert r.returncode != 0
    assert "File size limit exceeded" in r.output or "File too large" in r.output


def test_process_limit(box):
    require(box.backend, namespaces=True, root=True)
    r = box.exec("for i in $(seq 200); do sleep 5 & done; wait", timeout=10)
    assert "Resource temporarily unavailable" in r.output or "retry" in r.output
    assert box.exec("echo alive", timeout=10).output.strip() == "alive"


def test_fork_bomb_fails_safely(box):
    require(box.backend, namespaces=True, root=True)
    r = box.exec("bomb() { bomb | bomb & }; bomb; sleep 3; echo detonated", timeout=6)
    assert r.wall_s < 15
    r = box.exec("echo alive; ps -e -o comm= | wc -l", timeout=10)
    alive, count = r.output.split()
    assert alive == "alive" and int(count) < 8, r.output  # the bomb's processes are all gone


# ---------------------------------------------------------------------------- isolation
def test_no_network(box):
    require(box.backend, namespaces=True)
    r = box.exec(
        "python -c \"import socket; socket.create_connection(('1.1.1.1', 80), 2)\"", timeout=20
    )
    assert r.returncode != 0 and ("unreachable" in r.output or "Errno" in r.output)


def test_own_pid_space_and_no_stray_processes(box):
    require(box.backend, namespaces=True)
    box.exec("sleep 60 &", timeout=5)
    r = box.exec("ps -e -o comm=", timeout=5)
    assert "sleep" not in r.output
    assert len(r.output.split()) < 6  # executor, bash, ps: not the host's processes


def test_hidden_paths_are_invisible(box, shared):
    require(box.backend, namespaces=True)
    r = box.exec(
        f"ls -A {shared}/secret {shared}/tasks/hidden; cat {shared}/secret/hidden.txt "
        f"{shared}/episodes/ep-neighbour/notes.txt; "
        f"grep -rl {HIDDEN_WORD} {shared} /tmp 2>/dev/null; echo done",
        timeout=30,
    )
    assert not r.timed_out and r.output.rstrip().endswith("done")
    assert HIDDEN_WORD not in r.output


def test_readable_paths_are_readable_not_writable(box, shared):
    require(box.backend, namespaces=True)
    repo = shared / "tasks" / "repo"
    r = box.exec(
        f"cat {repo}/data.txt; touch {repo}/planted; echo more >> {repo}/data.txt", timeout=10
    )
    assert "public data" in r.output
    assert not (repo / "planted").exists() and (repo / "data.txt").read_text() == "public data\n"


def test_writes_outside_the_workspace_are_refused(box):
    require(box.backend, namespaces=True, root=True)
    marker = f"mlsbench-escape-{uuid.uuid4().hex[:6]}"
    before = EXECUTOR.read_bytes()
    box.exec(
        f"touch /etc/{marker}; touch /usr/{marker}; echo x >> {EXECUTOR}; "
        f"touch {box.config.root.parent}/{marker}; touch ok",
        timeout=5,
    )
    assert not Path(f"/etc/{marker}").exists() and not Path(f"/usr/{marker}").exists()
    assert not (box.config.root.parent / marker).exists()
    assert EXECUTOR.read_bytes() == before
    assert (box.config.root / "ok").exists()


def test_runs_as_an_unprivileged_user(box):
    require(box.backend, namespaces=True)
    r = box.exec("id -u", timeout=5)
    assert r.output.strip() != "0"
    assert box.isolation()["user"] or not ROOT


def test_commands_cannot_reach_the_executor_channel(box):
    require(box.backend, namespaces=True, root=True)
    forged = '{"rc": 0, "output": "forged", "wall_s": 0}'
    box.exec(f"for f in /proc/$PPID/fd/*; do echo '{forged}' > $f; done 2>/dev/null", timeout=5)
    r = box.exec("echo genuine", timeout=5)
    assert r.output.strip() == "genuine"


def test_isolation_report_and_idempotent_close(box):
    iso = box.isolation()
    assert set(iso) == {"network", "pid", "mounts", "user", "limits"}
    if box.backend == "local":
        assert iso["network"] == NAMESPACES
    if box.backend == "docker" or NAMESPACES:
        assert iso["network"] and iso["pid"] and iso["mounts"] and iso["limits"]
    box.close()
    box.close()


# ---------------------------------------------------------------------------- clean-up
def test_cleanup_after_close_while_a_command_runs(box):
    marker = f"mlsbench{uuid.uuid4().hex[:10]}"
    results = []
    t = threading.Thread(
        target=lambda: results.append(_try(box.exec, f"sleep 300; echo {marker}", timeout=600))
    )
    t.start()
    assert wait_until(lambda: host_processes(f"echo {marker}")), "the command never started"
    box.close()
    t.join(30)
    assert not t.is_alive(), "close() did not stop the running command"
    assert wait_until(lambda: not host_processes(f"echo {marker}"))


def _try(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        return e


CRASHER = """
import sys, threading, time
from pathlib import Path
from mlsbench_env.sandbox import SandboxConfig, make_sandbox
root = Path(sys.argv[2]); root.mkdir()
sb = make_sandbox(sys.argv[1], SandboxConfig(root=root, memory_mb=512, processes=64))
threading.Thread(target=sb.exec, args=("sleep 300; echo " + sys.argv[3],),
                 kwargs={"timeout": 600}, daemon=True).start()
print("running", flush=True)
time.sleep(600)
"""


def test_cleanup_after_a_crash(box, shared):
    """The process holding the sandbox is killed (SIGKILL) mid-command: nothing survives it."""
    marker = f"mlsbench{uuid.uuid4().hex[:10]}"
    root = shared / "episodes" / f"crash-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, box.backend, str(root), marker],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "running"
        assert wait_until(lambda: host_processes(f"echo {marker}")), "the command never started"
    finally:
        proc.kill()
        proc.wait()
    assert wait_until(lambda: not host_processes(f"echo {marker}"), timeout=30)


# ---------------------------------------------------------------------------- through the env
@pytest.fixture(params=BACKENDS)
def env_backend(request):
    require(request.param)
    known_failure(request, request.param)
    return request.param


def _first_task():
    from mlsbench_env.spec import builtin_task_ids

    ids = builtin_task_ids()
    if not ids:
        pytest.skip("no shipped task is loadable here")
    return "opt-evolution-strategy" if "opt-evolution-strategy" in ids else ids[0]


def test_fixed_file_integrity(env_backend, tmp_path):
    from mlsbench_env.env import ResearchEnv

    env = ResearchEnv(
        _first_task(), sandbox=env_backend, runs_dir=None, work_dir=str(tmp_path / "eps")
    )
    try:
        env.reset(seed=0)
        fixed = sorted(env.workspace.pristine)[0]
        pristine = env.workspace.pristine[fixed]
        obs, *_ = env.step({"tool": "shell", "args": {"command": f"echo planted >> {fixed}"}})
        assert (env.workspace.root / fixed).read_bytes() == pristine
        assert "restored" in obs
    finally:
        env.close()


def test_task_definitions_are_unreadable_from_the_env(env_backend, tmp_path):
    from mlsbench_env.env import ResearchEnv

    if env_backend == "local" and not NAMESPACES:
        pytest.skip("no mount namespace here: the local backend cannot hide paths")
    env = ResearchEnv(
        _first_task(), sandbox=env_backend, runs_dir=None, work_dir=str(tmp_path / "eps")
    )
    try:
        env.reset(seed=0)
        task = env.task
        hidden = [s.label for s in task.spec.settings if s.hidden]
        obs, *_ = env.step(
            {
                "tool": "shell",
                "args": {
                    "command": f"cat {task.root}/task.yaml; ls -A {task.root}; "
                    f"grep -rs -e {hidden[0]!r} {task.root} {tmp_path} /tmp; echo done"
                    if hidden
                    else f"cat {task.root}/task.yaml; echo done"
                },
            }
        )
        assert "done" in obs
        assert "editable:" not in obs  # task.yaml's content
        for label in hidden:
            assert label not in obs
    finally:
        env.close()
