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

import json
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
from mlsbench_env.sandbox.executor import HERE as EXECUTOR_DIR
from mlsbench_env.sandbox.local import namespace_prefix
from mlsbench_env.taskkit.privilege import landlock_abi
from mlsbench_env.tools import TOOLS

BACKENDS = [
    pytest.param("local", id="local"),
    # the local backend as a non-root user runs it (user namespace, no uid of its own, every
    # capability dropped): MLSBENCH_LOCAL_ROOTLESS=1 takes that path as root too
    pytest.param("local-rootless", id="local-rootless"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
]
KNOWN_FAILURES = {
    ("local", "test_memory_bomb_over_many_processes"): (
        "the local backend bounds each process with rlimits but has no cgroup bounding their "
        "sum (the bomb holds 2.4 GB of the host's memory for two seconds)"
    ),
    ("local-rootless", "test_memory_bomb_over_many_processes"): (
        "as the local backend: rlimits per process, no cgroup bounding their sum"
    ),
}
NAMESPACES = namespace_prefix() is not None
EXECUTOR = EXECUTOR_DIR / "commands.py"  # a source file of the executor on the host
ROOT = os.geteuid() == 0


def backend_name(backend: str) -> str:
    """The backend a variant of the suite's parameters runs on."""
    return "local" if backend == "local-rootless" else backend


@pytest.fixture(autouse=True)
def _rootless_variant(request, monkeypatch):
    callspec = getattr(request.node, "callspec", None)
    if callspec and "local-rootless" in callspec.params.values():
        monkeypatch.setenv("MLSBENCH_LOCAL_ROOTLESS", "1")


HIDDEN_WORD = "hidden-setting-label"


@cache
def docker_unavailable() -> str | None:
    """Why the docker backend cannot run here, or None."""
    try:
        from mlsbench_env.sandbox.docker import DockerOptions, client, images
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
    if backend.startswith("local") and namespaces and namespace_prefix() is None:
        pytest.skip("no user/net/pid/mount namespaces here (util-linux unshare failed)")
    if backend == "local-rootless" and root:
        pytest.skip("a rootless sandbox has no uid of its own (nor a process limit of its own)")
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
    sb = make_sandbox(backend_name(backend), config)
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
    require(box.backend, namespaces=True)
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
    if box.backend == "local-rootless" or (box.backend == "local" and not ROOT):
        # a user namespace: the user's own uid, with no capability at all
        r = box.exec("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status", timeout=5)
        assert [line.split()[1] for line in r.output.splitlines()] == ["0" * 16] * 4, r.output
        return
    r = box.exec("id -u", timeout=5)
    assert r.output.strip() != "0"
    assert box.isolation()["user"] or not ROOT


def test_commands_cannot_reach_the_executor_channel(box):
    require(box.backend, namespaces=True)
    forged = '{"rc": 0, "output": "forged", "wall_s": 0}'
    box.exec(f"for f in /proc/$PPID/fd/*; do echo '{forged}' > $f; done 2>/dev/null", timeout=5)
    r = box.exec("echo genuine", timeout=5)
    assert r.output.strip() == "genuine"


def test_isolation_report_and_idempotent_close(box):
    iso = box.isolation()
    assert set(iso) == {"network", "pid", "mounts", "user", "limits", "landlock"}
    if box.backend.startswith("local"):
        assert iso["network"] == (namespace_prefix() is not None)
        # the sandbox's commands get the Landlock of this kernel (no filter in between)
        assert iso["landlock"] == (landlock_abi() > 0)
    if box.backend == "docker" or namespace_prefix() is not None:
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
        [sys.executable, "-c", CRASHER, backend_name(box.backend), str(root), marker],
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
# the host's own file work is the same whichever way the local sandbox runs its commands
ENV_BACKENDS = [p for p in BACKENDS if p.values[0] != "local-rootless"]


@pytest.fixture(params=ENV_BACKENDS)
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
        _first_task(),
        sandbox=backend_name(env_backend),
        runs_dir=None,
        work_dir=str(tmp_path / "eps"),
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

    if env_backend.startswith("local") and namespace_prefix() is None:
        pytest.skip("no mount namespace here: the local backend cannot hide paths")
    env = ResearchEnv(
        _first_task(),
        sandbox=backend_name(env_backend),
        runs_dir=None,
        work_dir=str(tmp_path / "eps"),
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


# ---------------------------------------------------------------------------- trust, part 1
CANARY = "host-canary-7f3a"


@pytest.fixture
def canary(tmp_path):
    """A file and a folder of the host, outside every workspace, that no step may read or
    write (the host runs as a user the sandbox is not)."""
    folder = tmp_path / "host-folder"
    folder.mkdir()
    (folder / "run.py").write_text(CANARY)
    (folder / "optimizer.py").write_text(CANARY)
    return folder


def _env(backend, tmp_path, task=None, runs_dir=None):
    from mlsbench_env.env import ResearchEnv

    env = ResearchEnv(
        task or _first_task(),
        sandbox=backend_name(backend),
        runs_dir=runs_dir,
        final_seeds=[0],
        work_dir=str(tmp_path / "eps"),
        tools=[*TOOLS, "jobs"],
        max_jobs=1,
    )
    env.reset(seed=0)
    return env


def _assert_canary_untouched(canary, *texts):
    assert sorted(p.name for p in canary.iterdir()) == ["optimizer.py", "run.py"]
    assert all(p.read_text() == CANARY for p in canary.iterdir())
    for text in texts:
        assert CANARY not in str(text)


LINKS = {
    "editable file, absolute": "ln -sf {canary}/optimizer.py optimizer.py",
    "editable file, relative": (
        "ln -sf $(realpath --relative-to=. {canary})/optimizer.py optimizer.py"
    ),
    "fixed file": "ln -sf {canary}/run.py run.py",
    "folder of fixed files": "mkdir -p pkg && rm -rf pkg && ln -s {canary} pkg",
    "workspace folder": "cd .. && mv workspace moved && ln -s {canary} workspace",
    "scratch folder": (
        "mkdir -p scratch && ln -sf {canary} scratch/d && ln -sf {canary}/run.py scratch/f"
    ),
}


def test_links_planted_by_shell_are_never_followed_by_the_host(env_backend, tmp_path, canary):
    """A link planted in place of any file or folder of the workspace (``LINKS``, one after
    another in one episode): the integrity restore, `view`, `edit`, snapshot/restore, `test` and
    a background test, `submit`, export and rescore never read or write through it."""
    from mlsbench_env.analysis.export import export
    from mlsbench_env.analysis.rescore import rescore_run

    env = _env(env_backend, tmp_path, runs_dir=str(tmp_path / "runs"))
    try:
        ws = env.workspace
        seen = []
        for how, command in LINKS.items():
            obs, *_ = env.step(
                {"tool": "shell", "args": {"command": command.format(canary=canary)}}
            )
            seen.append(obs)
            for rel in ("optimizer.py", "run.py"):
                path = ws.root / rel
                assert not path.is_symlink() and path.is_file(), (how, rel, obs)
            for path in ("optimizer.py", "run.py", "scratch/f", "pkg/run.py"):
                seen.append(env.step({"tool": "view", "args": {"path": path}})[0])
            edit = {"path": "optimizer.py", "action": "insert", "after": 1, "text": "# x\n"}
            seen.append(env.step({"tool": "edit", "args": edit})[0])
            _assert_canary_untouched(canary, *seen)
        snap = env.snapshot()
        assert CANARY.encode() not in b"".join(d for d, _ in snap.workspace.files.values())
        env.restore(snap)
        obs, *_, info = env.step({"tool": "test"})
        seen.append(obs)
        assert info.get("score") is not None, obs  # the settings ran and were graded
        obs, *_, info = env.step({"tool": "test", "args": {"wait": False}})
        seen.append(env.step({"tool": "jobs", "args": {"action": "wait", "id": info["job"]}})[0])
        obs, _, terminated, _, info = env.step({"tool": "submit"})
        assert terminated and info.get("score") is not None, obs
        assert info["isolation"] == env.isolation  # the run record says which isolation
        seen.append(obs)
        run_dir = env.run_dir
        env.close()
        export([run_dir], tmp_path / "export")
        seen += [p.read_text() for p in (tmp_path / "export").rglob("*") if p.is_file()]
        seen.append(rescore_run(run_dir, backend=backend_name(env_backend)))
        _assert_canary_untouched(canary, *seen)
    finally:
        env.close()
    _assert_canary_untouched(canary)


def test_a_background_test_is_out_of_reach_of_the_agents_commands(env_backend, tmp_path):
    """A background test runs and is graded while the agent's commands run: its copy and its
    artifacts must be invisible to them (else a command could swap an artifact for a link
    between the host's check and the grader's read)."""
    env = _env(env_backend, tmp_path)
    try:
        obs, *_, info = env.step({"tool": "test", "args": {"wait": False}})
        assert info.get("job"), obs
        obs, *_ = env.step(
            {"tool": "shell", "args": {"command": "ls -A ../jobs; touch ../jobs/x; echo done"}}
        )
        listing = obs.split("exit code", 1)[-1]
        assert "job1-" not in listing and "done" in obs, obs
        assert not (env.episode.episode_dir / "jobs" / "x").exists()
        obs, *_, info = env.step({"tool": "jobs", "args": {"action": "wait", "id": 1}})
        assert "finished" in obs, obs
    finally:
        env.close()


def test_links_in_the_artifacts_folder_fail_the_run(env_backend, tmp_path, canary):
    """A run that leaves a link (or a FIFO) among its artifacts fails with a message; the
    grader never reads what the link names."""
    from mlsbench_env.evaluation import run_setting
    from mlsbench_env.sandbox.visibility import sandbox_config
    from mlsbench_env.spec import Setting

    env = _env(env_backend, tmp_path)
    try:
        task = env.task
        for plant, word in (
            (f"ln -s {canary}/run.py $MLSBENCH_OUT/result.json", "link"),
            (f"ln -s {canary} $MLSBENCH_OUT/sub", "link"),
            ("mkfifo $MLSBENCH_OUT/result.json", "special"),
            (f"rm -rf $MLSBENCH_OUT && ln -s {canary} $MLSBENCH_OUT", "a link"),
        ):
            setting = Setting(label="plant", command=plant)
            out = env.episode.episode_dir / "out" / f"plant-{uuid.uuid4().hex[:6]}"
            run = run_setting(task, env.episode.sandbox, "workspace", setting, 0, out, {})
            assert run.metrics is None and word in run.error, (plant, run)
    finally:
        env.close()
    _assert_canary_untouched(canary)
    assert sandbox_config  # the env's own sandbox was used: the same config as every run


@pytest.fixture
def planted_copies(tmp_path):
    """Copies of the whole project's tasks (hidden/, private/, graders, anchors, baselines) in
    three places outside any workspace: the home folder, an unrelated folder, the temp folder."""
    import shutil
    import tempfile

    from mlsbench_env.spec import builtin_tasks_dir

    src = builtin_tasks_dir()
    places = [
        Path.home() / f".mlsbench-copy-{uuid.uuid4().hex[:6]}",
        tmp_path / "unrelated" / "checkout",
        Path(tempfile.gettempdir()) / f"mlsbench-copy-{uuid.uuid4().hex[:6]}",
    ]
    made = []
    try:
        for place in places:
            try:
                shutil.copytree(src, place / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
                made.append(place)
            except OSError:  # a home folder we cannot write (not root): the other two stand
                continue
        yield made
    finally:
        for place in made:
            shutil.rmtree(place, ignore_errors=True)


def test_planted_project_copies_are_unreadable(box, planted_copies):
    require(box.backend, namespaces=True)
    assert len(planted_copies) >= 2
    probes = []
    for place in planted_copies:
        for task in ("comp-caravan-insurance", "opt-evolution-strategy"):
            probes += [
                place / "tasks" / task / "grader.py",
                place / "tasks" / task / "anchors.json",
            ]
        probes.append(place / "tasks" / "comp-caravan-insurance" / "private" / "test_labels.csv")
        probes.append(place / "tasks" / "opt-evolution-strategy" / "hidden" / "instance_key.txt")
    assert all(p.is_file() for p in probes)
    r = box.exec(
        "for f in " + " ".join(map(str, probes)) + "; do head -c 64 $f 2>/dev/null && echo READ; "
        "done; find / -xdev \\( -name instance_key.txt -o -name test_labels.csv -o -name "
        "anchors.json \\) 2>/dev/null | head; echo done",
        timeout=60,
    )
    assert r.output.rstrip().endswith("done"), r.output
    assert r.output.split() == ["done"], r.output


SCAN = r"""
import hashlib, json, os, sys
want = json.loads(sys.argv[1])
sizes = {int(s) for s in want}
found = []
for top in (sys.argv[2],):
    for d, dirs, files in os.walk(top):
        if d in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        for name in files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if st.st_size in sizes and os.path.isfile(p) and not os.path.islink(p):
                    h = hashlib.sha256(open(p, "rb").read()).hexdigest()
                    if h in want[str(st.st_size)]:
                        found.append(p)
            except OSError:
                pass
print(json.dumps(found))
"""


def test_content_scan_finds_no_secret_file(env_backend, tmp_path):
    """A whole-filesystem walk from inside an episode's sandbox finds no file whose bytes equal
    a file under any shipped task's hidden/, private/, baselines/, grader.py or anchors.json
    (by content hash, not by name)."""
    import hashlib
    import json

    from mlsbench_env.spec import builtin_tasks_dir

    want: dict[str, list[str]] = {}
    public = set()
    for task in builtin_tasks_dir().iterdir():
        for p in (task / "repo").rglob("*"):
            if p.is_file():
                public.add(hashlib.sha256(p.read_bytes()).hexdigest())
        secret = [task / "grader.py", task / "anchors.json"]
        for sub in ("hidden", "private", "baselines"):
            secret += [p for p in (task / sub).rglob("*") if p.is_file()]
        for p in secret:
            data = p.read_bytes() if p.is_file() else b""
            h = hashlib.sha256(data).hexdigest()
            # a tiny or public file (an empty __init__.py) says nothing about the task
            if len(data) >= 64 and h not in public:
                want.setdefault(str(len(data)), []).append(h)
    # the scan finds them where they are (a positive control, on the host)
    host = subprocess.run(
        [sys.executable, "-c", SCAN, json.dumps(want), str(builtin_tasks_dir())],
        capture_output=True,
        text=True,
    )
    assert len(json.loads(host.stdout)) >= 20, host
    env = _env(env_backend, tmp_path)
    try:
        (env.workspace.root / "scan.py").write_text(SCAN)
        r = env.episode.sandbox.exec(
            f"python scan.py '{json.dumps(want)}' /", timeout=600, cwd="workspace"
        )
        assert r.ok, r.output
        assert json.loads(r.output.strip().splitlines()[-1]) == []
    finally:
        env.close()


@pytest.mark.slow  # 30 s; CI runs it in its own fresh venv under the temporary folder
def test_a_venv_under_the_temp_folder_is_the_sandboxes_interpreter(tmp_path):
    """The sandbox's private /tmp once hid such a venv, and commands silently ran another
    Python found on PATH; now the venv is bound in and checked at start."""
    if not NAMESPACES:
        pytest.skip("no namespaces here: the local backend runs commands on the host as is")
    import tempfile

    venv = Path(tempfile.mkdtemp(prefix="mlsbench-venv-"))
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
        )
        venv.chmod(0o755)  # as `python -m venv /tmp/venv` makes it (mkdtemp's is private)
        py = venv / "bin" / "python"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        if subprocess.run([str(py), "-c", "import torch, gymnasium"], env=env).returncode:
            pytest.skip(
                "a venv made from this interpreter does not see torch (it is itself a venv); "
                "CI's venv step installs one from scratch under the temporary folder"
            )
        code = (
            "import sys; from pathlib import Path; "
            "from mlsbench_env.sandbox import SandboxConfig, make_sandbox; "
            f"sb = make_sandbox('local', SandboxConfig(root=Path({str(tmp_path)!r}))); "
            "print(sb.exec(\"python -c 'import sys, torch, numpy; print(sys.prefix, "
            "torch.__version__, numpy.__version__)'\", timeout=120).output); sb.close()"
        )
        r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env)
        import numpy
        import torch

        assert r.stdout.split() == [str(venv), torch.__version__, numpy.__version__], r
    finally:
        import shutil

        shutil.rmtree(venv, ignore_errors=True)


def test_a_missing_interpreter_fails_at_start_with_a_message(tmp_path):
    from mlsbench_env.errors import SandboxError

    if not NAMESPACES:
        pytest.skip("no namespaces here: the local backend runs commands on the host as is")
    bin_dir = Path(sys.executable).parent
    config = SandboxConfig(root=tmp_path, hidden=(bin_dir,))
    with pytest.raises(SandboxError, match="interpreter is not reachable") as e:
        make_sandbox("local", config).exec("true", timeout=5)
    assert sys.executable in str(e.value)


def test_shm_and_tmp_are_private_and_gone_after_close(box, shared):
    require(box.backend, namespaces=True)
    marker = f"mlsbench-shm-{uuid.uuid4().hex[:8]}"
    other_root = shared / "episodes" / f"ep-{uuid.uuid4().hex[:8]}"
    other_root.mkdir()
    other = make_sandbox(backend_name(box.backend), SandboxConfig(root=other_root, memory_mb=512))
    try:
        box.exec(f"echo {marker} > /dev/shm/{marker}; echo {marker} > /tmp/{marker}", timeout=10)
        assert marker in box.exec(f"cat /dev/shm/{marker} /tmp/{marker}", timeout=10).output
        r = other.exec(f"ls /dev/shm /tmp; cat /dev/shm/{marker} /tmp/{marker}", timeout=10)
        assert marker not in r.output.replace(f"/dev/shm/{marker}", "").replace(
            f"/tmp/{marker}", ""
        ), r.output
    finally:
        other.close()
    box.close()
    assert not Path(f"/dev/shm/{marker}").exists() and not Path(f"/tmp/{marker}").exists()


def test_no_host_path_in_ps_cmdline_or_mounts(env_backend, tmp_path):
    """`ps`, every /proc/*/cmdline and `mount` inside name no host path but the workspace's
    and the interpreter's (which the sandbox holds on purpose)."""
    from mlsbench_env.sandbox.visibility import project_checkout

    if env_backend.startswith("local") and namespace_prefix() is None:
        pytest.skip("no namespaces here: the local backend runs commands on the host as is")
    env = _env(env_backend, tmp_path)
    try:
        obs, *_ = env.step(
            {
                "tool": "shell",
                "args": {
                    "command": (
                        "ps aux; cat /proc/*/cmdline | tr '\\0' ' '; echo; mount; "
                        "cat /proc/self/mountinfo; env"
                    )
                },
            }
        )
        forbidden = [str(env.task.root), str(tmp_path), str(Path.home() / ".cache")]
        if project_checkout():
            forbidden.append(str(project_checkout()))
        workspace = str(env.episode.episode_dir)
        for path in forbidden:
            assert path not in obs.replace(workspace, "<workspace>"), (path, obs)
    finally:
        env.close()


def test_final_runs_cannot_touch_each_other(env_backend, tmp_path):
    """In a final evaluation, code running in one (setting, seed) run changes no byte of
    another run's files, nor of its own fixed files. Checked for every shipped task the cheap
    way: a planted writer setting and a checker setting, not a whole evaluation."""
    from mlsbench_env.evaluation import final_evaluation
    from mlsbench_env.spec import Setting, builtin_task_ids, load_task

    if env_backend == "local" and namespace_prefix() is None:
        pytest.skip("no namespaces here: the local backend runs commands on the host as is")
    writer = Setting(
        label="writer",
        command=(
            "for f in $(find . -type f); do echo pwned >> $f; done 2>&1 | sort | uniq -c; "
            "for d in ../../*/workspace ../../*; do touch $d/planted && echo WROTE $d; done "
            "2>/dev/null; true"
        ),
    )
    checker = Setting(
        label="checker", command="ls -A ../..; find . -type f | sort | xargs sha256sum"
    )
    for task_id in builtin_task_ids():
        task = load_task(task_id)
        if task.is_competition:
            continue
        result = final_evaluation(
            task,
            {},
            {},
            backend=env_backend,
            seeds=[0],
            settings=[writer, checker],
            work_root=tmp_path,
            anchors={},
        )
        w, c = result.runs
        assert "Read-only file system" in w.log_tail, (task_id, w.log_tail)
        wrote = [ln for ln in w.log_tail.splitlines() if ln.startswith("WROTE")]
        assert all("eval-0-writer" in ln for ln in wrote), (task_id, wrote)  # its own folder
        import hashlib

        lines = [ln for ln in c.log_tail.splitlines() if "  ./" in ln]
        assert lines, (task_id, c.log_tail)
        for line in lines:
            digest, rel = line.split("  ./", 1)
            files = task.scaffold_files()  # repo/ and the task kit
            src = files[rel] if rel in files else task.root / "hidden" / rel
            assert hashlib.sha256(src.read_bytes()).hexdigest() == digest, (task_id, rel)
        assert "planted" not in c.log_tail, (task_id, c.log_tail)
        assert c.log_tail.split()[0] == "eval-0-checker", (task_id, c.log_tail)  # nothing else


SECRET_READER = (
    "python -c \"import hashlib, json, os; fd = os.environ.get('MLSBENCH_SECRETS_FD'); "
    "print('channel', hashlib.sha256(json.load(os.fdopen(int(fd)))['key'].encode()).hexdigest() "
    'if fd else None)"'
)


def test_secrets_reach_only_the_command_that_carries_them(box):
    import hashlib

    key = f"secret-{uuid.uuid4().hex}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    r = box.exec(
        f"{SECRET_READER}; ls -A /tmp /dev/shm .; grep -rl {key} /tmp /dev/shm . 2>/dev/null; true",
        timeout=60,
        secrets={"key": key},
    )
    assert f"channel {digest}" in r.output, r.output
    assert key not in r.output  # no file anywhere holds it
    r = box.exec(f"{SECRET_READER}; env | grep -c MLSBENCH_SECRETS; true", timeout=10)
    assert "channel None" in r.output and key not in r.output, r.output


def test_final_runs_get_their_secrets_over_the_channel_not_as_files(env_backend, tmp_path):
    """opt-evolution-strategy's instance key reaches the run's harness, and no file of the
    run's folder holds it (a hidden setting makes the evaluation use it)."""
    import hashlib

    from mlsbench_env.evaluation import final_evaluation
    from mlsbench_env.spec import Setting, load_task

    if env_backend == "local" and namespace_prefix() is None:
        pytest.skip("no namespaces here: the local backend runs commands on the host as is")
    task = load_task("opt-evolution-strategy")
    assert task.spec.secrets == ("instance_key.txt",)
    key = (task.root / "hidden" / "instance_key.txt").read_text()
    reader = SECRET_READER.replace("['key']", "['instance_key.txt']")
    probe = Setting(
        label="probe",
        hidden=True,
        command=f"{reader}; ls -A; grep -rl '{key.strip()}' . /tmp; true",
    )
    result = final_evaluation(
        task,
        {},
        {},
        backend=env_backend,
        seeds=[0],
        settings=[probe],
        work_root=tmp_path,
        anchors={},
    )
    log = result.runs[0].log_tail
    assert f"channel {hashlib.sha256(key.encode()).hexdigest()}" in log, log
    assert "instance_key" not in log.replace("channel", "") and key.strip() not in log, log
    assert "run_hidden.py" in log  # the hidden setting's other files are there as before


def test_the_isolation_level_is_in_reset_info_and_the_record(env_backend, tmp_path):
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.sandbox import isolation_level

    env = ResearchEnv(
        _first_task(),
        sandbox=backend_name(env_backend),
        runs_dir=str(tmp_path / "runs"),
        work_dir=str(tmp_path / "eps"),
    )
    try:
        _, info = env.reset(seed=0)
        expected = isolation_level(env.episode.sandbox.isolation())
        assert info["isolation"] == expected == env.isolation
        if env_backend == "docker" or ROOT:
            assert expected == "full"
        reset = json.loads((env.run_dir / "trajectory.jsonl").read_text().splitlines()[1])
        assert reset["type"] == "reset" and reset["isolation"] == expected
        # what agent code gets in the task kit's child: Landlock wherever this kernel has it
        # (the docker engine's seccomp profile lets it through)
        agent = "landlock" if landlock_abi() else ("none" if expected == "full" else "uid")
        assert info["agent_isolation"] == reset["agent_isolation"] == agent
    finally:
        env.close()


def test_require_isolation_refuses_a_sandbox_without_landlock(tmp_path, monkeypatch):
    """The refusal itself (the sandbox's report is replaced: this kernel has Landlock)."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.errors import MLSBenchError
    from mlsbench_env.sandbox.local import LocalSandbox

    real = LocalSandbox.isolation
    monkeypatch.setattr(LocalSandbox, "isolation", lambda self: {**real(self), "landlock": False})
    opts = dict(runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"))
    env = ResearchEnv(_first_task(), require_isolation=True, **opts)
    with pytest.raises(MLSBenchError, match="require_isolation=True refuses"):
        env.reset(seed=0)
    env.close()
    env = ResearchEnv(_first_task(), **opts)
    with pytest.warns(RuntimeWarning, match="runs with isolation 'none'"):
        _, info = env.reset(seed=0)
    assert info["agent_isolation"] == "none"
    env.close()
