"""The trusted task kit on its own: the privilege drop (the kernel's boundary, without the guard),
the guard's messages, the child's failure modes, weaker isolation, and the kit's place in a
workspace. Real processes, the real kernel; no task involved."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest

from mlsbench_env.errors import EditError, TaskSpecError
from mlsbench_env.spec import kit_files, load_task, load_task_dir
from mlsbench_env.taskkit import Budget
from mlsbench_env.taskkit.privilege import landlock_abi
from mlsbench_env.workspace import Workspace

Child = RunFailure = None  # the workspace copy's, set by the task_dir fixture
needs_landlock = pytest.mark.skipif(landlock_abi() < 6, reason="the kernel lacks Landlock ABI 6")

# a seccomp filter that makes the Landlock syscalls fail with ENOSYS, as on a kernel without
# Landlock, then runs the rest of argv (real kernel filtering, for the weaker-isolation path)
NO_LANDLOCK = """
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
prog = [(0x20, 0, 0, 0), (0x35, 0, 2, 444), (0x25, 1, 0, 446), (0x06, 0, 0, 0x00050000 | 38),
        (0x06, 0, 0, 0x7FFF0000)]
raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
buf = ctypes.create_string_buffer(raw)
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(Prog(len(prog), ctypes.addressof(buf))), 0, 0) == 0
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


@pytest.fixture
def task_dir(tmp_path, monkeypatch):
    """A folder like a task's workspace: a fixed module with child functions, an agent module,
    a data file agent code must not read; the current folder, on sys.path."""
    (tmp_path / "oracle.txt").write_text("the answer is 42")
    (tmp_path / "fixed.py").write_text(
        textwrap.dedent(
            """
            import time

            def run_agent(conn, what):
                import agent
                conn.send_bytes(b"R" + repr(agent.go(what)).encode())

            def sleep(conn):
                time.sleep(60)

            def flood(conn):
                conn.send_bytes(b"R" + b"x" * 100_000)

            def crash(conn):
                import os
                os._exit(7)
            """
        )
    )
    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            """
            import os

            def go(what):
                if what == "read":
                    return open(os.path.join(os.path.dirname(__file__), "oracle.txt")).read()
                if what == "write":
                    open(os.path.join(os.path.dirname(__file__), "fixed.py"), "a").write("#")
                if what == "proc":
                    return open(f"/proc/{os.getppid()}/cmdline").read()
                if what == "cwd":
                    open("notes.txt", "w").write("scratch is writable")
                    return os.getcwd()
                if what == "raise":
                    raise ValueError("agent code failed")
                return "ok"
            """
        )
    )
    # the kit as a workspace holds it (``taskkit``): its children start without mlsbench_env
    for rel, src in kit_files().items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(src.read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    global Child, RunFailure
    kit = importlib.import_module("taskkit")
    Child, RunFailure = kit.Child, kit.RunFailure
    yield tmp_path
    for name in [m for m in sys.modules if m == "taskkit" or m.startswith("taskkit.")]:
        del sys.modules[name]


def ask(what, **kw):
    with Child("fixed:run_agent", what, may_read=["agent.py"], **kw) as child:
        return child.recv(), child.isolation


@needs_landlock
def test_the_child_reads_only_what_it_may_import_and_writes_only_its_scratch(task_dir):
    msg, isolation = ask("ok")
    assert msg == b"R'ok'" and isolation == "landlock"
    msg, _ = ask("cwd")
    scratch = msg[2:-1].decode()
    assert scratch != str(task_dir) and not os.path.exists(scratch)  # removed at close
    for what, named in [("read", "oracle.txt"), ("write", "fixed.py"), ("proc", "/proc/")]:
        with pytest.raises(RunFailure, match="policy violation") as e:
            ask(what)
        assert named in str(e.value)
    assert (task_dir / "fixed.py").read_text().endswith("os._exit(7)\n")


@needs_landlock
def test_the_kernel_holds_the_boundary_without_the_guard(task_dir):
    """privilege.drop alone (no audit hook): file, /proc, TCP and signal attempts fail."""
    probe = textwrap.dedent(
        """
        import os, socket, sys, tempfile
        from taskkit import privilege
        scratch = tempfile.mkdtemp()
        ppid = os.getppid()
        print(privilege.drop(["agent.py", "lib"], [scratch], ["."], deny=["lib/pkg/datasets"]))
        def attempt(name, fn):
            try:
                fn()
                print(name, "allowed")
            except OSError as e:
                print(name, type(e).__name__)
        attempt("import-file", lambda: open("agent.py").read())
        attempt("oracle", lambda: open("oracle.txt").read())
        attempt("write-fixed", lambda: open("fixed.py", "a"))
        attempt("write-tmp", lambda: open("/tmp/kit-probe", "w"))
        attempt("scratch", lambda: open(os.path.join(scratch, "x"), "w"))
        attempt("parent-proc", lambda: open(f"/proc/{ppid}/cmdline").read())
        attempt("package-code", lambda: open("lib/pkg/code.py").read())
        attempt("package-data", lambda: open("lib/pkg/datasets/labels.txt").read())
        attempt("tcp", lambda: socket.create_connection(("127.0.0.1", 9), timeout=2))
        attempt("signal", lambda: os.kill(ppid, 0))
        """
    )
    (task_dir / "lib" / "pkg" / "datasets").mkdir(parents=True)
    (task_dir / "lib" / "pkg" / "code.py").write_text("x = 1\n")
    (task_dir / "lib" / "pkg" / "datasets" / "labels.txt").write_text("0 1 1 0\n")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "landlock"
    got = dict(line.split(" ", 1) for line in out[1:] if line)
    assert got == {
        "import-file": "allowed",
        "oracle": "PermissionError",
        "write-fixed": "PermissionError",
        "write-tmp": "PermissionError",
        "scratch": "allowed",
        "parent-proc": "PermissionError",
        "package-code": "allowed",
        "package-data": "PermissionError",
        "tcp": "PermissionError",
        "signal": "PermissionError",
    }


def test_failures_of_the_child_are_runfailures_that_say_what_happened(task_dir):
    with pytest.raises(RunFailure, match="agent code failed"):
        ask("raise")
    with (
        Child("fixed:sleep", timeout_s=1.0) as child,
        pytest.raises(RunFailure, match="within 1 s"),
    ):
        child.recv()
    with Child("fixed:flood") as child, pytest.raises(RunFailure, match="over 1000 bytes"):
        child.recv(maxlength=1000)
    with Child("fixed:crash") as child, pytest.raises(RunFailure, match="exited with code 7"):
        child.recv()
    with Child("fixed:run_agent", "ok", may_read=["agent.py"]) as child:
        with pytest.raises(RunFailure, match=r"sent b'R' with 4 bytes, expected b'Q'"):
            child.expect(b"Q")
    with pytest.raises(RunFailure, match="No module named 'missing'"):
        Child("missing:main")


def test_without_landlock_the_kit_says_so_once_and_can_refuse(task_dir):
    runner = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, ".")
        from taskkit import Child, RunFailure
        for _ in range(2):
            with Child("fixed:run_agent", "ok", may_read=["agent.py"]) as c:
                print(c.isolation, c.recv())
        """
    )
    cmd = [sys.executable, "-c", NO_LANDLOCK, "-c", runner]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=task_dir)
    assert r.returncode == 0, r.stderr
    level = "none" if os.geteuid() else ("uid" if "/root/" not in sys.prefix else "nocaps")
    assert r.stdout.split("\n")[:2] == [f"{level} b\"R'ok'\""] * 2
    assert r.stderr.count("[taskkit] agent code runs with isolation") == 1
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=task_dir,
        env={**env, "MLSBENCH_REQUIRE_ISOLATION": "1"},
    )
    assert r.returncode != 0
    assert "MLSBENCH_REQUIRE_ISOLATION=1 requires Landlock" in r.stderr


def test_budget_refuses_what_would_go_over():
    b = Budget("evals", 10)
    assert b.charge(4) is None and b.charge(6) is None
    assert b.charge(1) == "evals budget exhausted: requested 1, 0 of 10 left"
    assert b.charge(-1) is not None
    assert b.record() == {"evals_budget": 10, "evals_used": 10, "evals_refused": 2}


def test_artifacts_are_written_after_every_child_ended(task_dir, tmp_path):
    write_artifacts = importlib.import_module("taskkit").write_artifacts
    child = Child("fixed:sleep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "planted.json").write_text("{}")
    write_artifacts(out, {"ok": True}, arrays={"pred": [1.0, 2.0]})
    assert child.proc.poll() is not None
    assert sorted(p.name for p in out.iterdir()) == ["pred.npy", "result.json"]


def test_the_kit_is_a_fixed_part_of_every_research_workspace(es_task, tmp_path, monkeypatch):
    ws = Workspace(es_task, tmp_path / "ws")
    kit = sorted(rel for rel in ws.pristine if rel.startswith("taskkit/"))
    assert kit == sorted(kit_files())
    assert "taskkit/child.py" in kit
    with pytest.raises(EditError):
        ws.replace("taskkit/child.py", 1, 1, "x = 1\n")
    (tmp_path / "ws" / "taskkit" / "guard.py").write_text("def install(*a): pass\n")
    events = ws.check_integrity(ws.editable_snapshot())
    assert any("taskkit/guard.py" in e for e in events), events
    assert (tmp_path / "ws" / "taskkit" / "guard.py").read_bytes() == ws.pristine[
        "taskkit/guard.py"
    ]
    comp = Workspace(load_task("comp-caravan-insurance"), tmp_path / "c")
    assert not any(rel.startswith("taskkit/") for rel in comp.pristine)


def test_a_kit_change_changes_every_research_tasks_hash(es_task, tmp_path, monkeypatch):
    fresh = type(es_task).content_hash.__wrapped__  # uncached
    before = fresh(es_task)
    changed = dict(kit_files())
    (tmp_path / "guard.py").write_text(changed["taskkit/guard.py"].read_text() + "# changed\n")
    changed["taskkit/guard.py"] = tmp_path / "guard.py"
    monkeypatch.setattr("mlsbench_env.spec.kit_files", lambda: changed)
    assert fresh(es_task) != before


def test_a_task_may_not_ship_its_own_taskkit(tmp_path):
    import shutil

    from mlsbench_env.spec import builtin_tasks_dir

    root = tmp_path / "opt-evolution-strategy"
    shutil.copytree(builtin_tasks_dir() / "opt-evolution-strategy", root)
    (root / "repo" / "taskkit").mkdir()
    with pytest.raises(TaskSpecError, match="repo/taskkit is where the task kit goes"):
        load_task_dir(root)
