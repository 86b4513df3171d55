"""The trusted task kit on its own: the privilege drop (the kernel's boundary, without the guard),
the guard's messages, the child's failure modes, weaker isolation, and the kit's place in a
workspace. Real processes, the real kernel; no task involved."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
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
                if what == "malloc":
                    return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
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


def test_the_child_keeps_freed_memory_unless_the_caller_says_otherwise(task_dir):
    """glibc's thresholds from the kit (a torch harness page-faulted its per-step tensors back
    every step without them); an env the caller passes wins."""
    import ast

    from taskkit.child import MALLOC_ENV

    outer = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    msg, _ = ask("malloc")
    assert ast.literal_eval(msg[1:].decode()) == {**MALLOC_ENV, **outer}
    msg, _ = ask("malloc", env={"MALLOC_TOP_PAD_": "0"})
    assert ast.literal_eval(msg[1:].decode()) == {**MALLOC_ENV, **outer, "MALLOC_TOP_PAD_": "0"}


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
    monkeypatch.setattr("mlsbench_env.spec.load.kit_files", lambda: changed)
    assert fresh(es_task) != before


def test_a_task_may_not_ship_its_own_taskkit(tmp_path):
    import shutil

    from mlsbench_env.spec import builtin_tasks_dir

    root = tmp_path / "opt-evolution-strategy"
    shutil.copytree(builtin_tasks_dir() / "opt-evolution-strategy", root)
    (root / "repo" / "taskkit").mkdir()
    with pytest.raises(TaskSpecError, match="repo/taskkit is where the task kit goes"):
        load_task_dir(root)


# ------------------------------------------------------------ training with the parent's optimizer
class PipeChild:
    """A Child's frame interface over one end of a pipe whose other end a thread serves."""

    name = "training"

    def __init__(self, conn):
        self.conn = conn

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.conn.send_bytes(kind + payload)

    def expect(self, kind: bytes, maxlength: int = 1 << 20, size: int | None = None) -> bytes:
        assert self.conn.poll(60), "the serving thread did not answer"
        msg = self.conn.recv_bytes()
        assert msg[:1] == kind and (size is None or len(msg) == size + 1), (msg[:1], len(msg))
        return msg[1:]


def _tiny_net(seed: int):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    )
    net[0].bias.requires_grad_(False)  # a frozen parameter: never moves, and is checked
    return net


def _batches(n: int):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((8, 5)).astype("<f4") for _ in range(n)]


def _train_through_kit(opt_args: dict, steps: int, cheat: bool = False) -> bytes:
    """Train _tiny_net in a thread through send_layout / serve_steps, the optimizer in a
    ParentState; returns the parent's final state bytes."""
    import threading
    from multiprocessing import Pipe

    import torch

    from mlsbench_env.taskkit import torchstate

    parent_end, child_end = Pipe()
    net = _tiny_net(0)  # built here: the generator is global to the process

    def child_side():
        torchstate.send_layout(child_end, net, count=torchstate.count(net))
        net.train()

        def loss_fn(batch):
            xy = torch.from_numpy(np.frombuffer(batch, "<f4").reshape(-1, 5).copy())
            if cheat:  # a step of its own
                with torch.no_grad():
                    net[3].weight.add_(1e-3)
            loss = ((net(xy[:, :3]) - xy[:, 3:]) ** 2).mean()
            return loss, loss * 2

        child_end.send_bytes(b"E" + torchstate.serve_steps(child_end, net, loss_fn))

    thread = threading.Thread(target=child_side, daemon=True)
    thread.start()
    child = PipeChild(parent_end)
    state = torchstate.ParentState.receive(child, cap=1000)
    assert state.layout["count"] == 43  # the whole state_dict: num_batches_tracked too
    assert state.kinds == [2, 1, 2, 2, 0, 0, 2, 2]  # weight, frozen bias, BN (2 + 2 buffers), ..
    state.adamw(0.01, (0.9, 0.95), 0.1, **opt_args)
    try:
        for step, batch in enumerate(_batches(steps)):
            loss, twice = state.step(child, step, batch.tobytes(), 0.01 * (step + 1), n_losses=2)
            assert twice == pytest.approx(2 * loss)
    finally:
        child.send(b"D", b"end")
        assert child.expect(b"E") == b"Dend"  # serve_steps returns the frame that ended it
        thread.join(5)
    return state.bytes()


@pytest.mark.parametrize(
    "opt_args", [{}, {"clip": 0.05, "matrices_only": True}], ids=["plain", "clip-matrices"]
)
def test_parent_state_trains_bitwise_as_torch_does_in_one_process(opt_args, monkeypatch):
    import torch

    from mlsbench_env.taskkit import torchstate

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the reduction order: as here
    net, steps = _tiny_net(0), 6
    trained = [p for p in net.parameters() if p.requires_grad]
    if opt_args.get("matrices_only"):
        groups = [
            {"params": [p for p in trained if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in trained if p.dim() < 2], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": trained, "weight_decay": 0.1}]
    opt = torch.optim.AdamW(groups, lr=0.01, betas=(0.9, 0.95), eps=1e-8)
    net.train()
    for step, batch in enumerate(_batches(steps)):
        xy = torch.from_numpy(batch)
        loss = ((net(xy[:, :3]) - xy[:, 3:]) ** 2).mean()
        net.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = 0.01 * (step + 1)
        if "clip" in opt_args:
            torch.nn.utils.clip_grad_norm_(trained, opt_args["clip"])
        opt.step()
    assert _train_through_kit(opt_args, steps) == torchstate.state_bytes(net)


def test_parent_state_fails_a_parameter_changed_in_the_child():
    from mlsbench_env.taskkit.child import RunFailure

    with pytest.raises(RunFailure, match="a parameter changed outside the fixed optimizer during"):
        _train_through_kit({}, 3, cheat=True)


def test_parent_state_checks_parameters_takes_buffers_and_loads_gradients():
    from mlsbench_env.taskkit.child import RunFailure
    from mlsbench_env.taskkit.torchstate import ParentState

    layout = {"shape": [[2, 2], [3], [1]], "kind": [2, 1, 0]}  # trained, frozen, buffer
    initial = np.arange(8, dtype="<f4")
    state = ParentState(layout, initial.tobytes())
    assert state.n == 8 and state.n_trained == 4 and state.bytes() == initial.tobytes()
    assert [tuple(t.shape) for t in state.tensors] == [(2, 2), (3,), (1,)]
    returned = initial.copy()
    returned[7] = 42.0  # a buffer: taken as the child left it
    state.check_returned(0, returned.tobytes())
    assert state.flat[7] == 42.0 and float(state.tensors[2]) == 42.0  # the views see it
    for i in (0, 5):  # a trained and a frozen parameter
        bad = state.flat.copy()
        bad[i] = np.nextafter(bad[i], np.float32(np.inf))
        with pytest.raises(RunFailure, match="changed outside the fixed optimizer during step 3"):
            state.check_returned(3, bad.tobytes())
    with pytest.raises(RunFailure, match="has 7 values, not 8"):
        state.check_returned(1, initial[:7].tobytes())
    grads = np.arange(8, dtype="<f4") / 10
    state.load_grads(bytes([1, 0, 1]) + grads.tobytes())
    assert np.array_equal(state.tensors[0].grad.numpy(), grads[:4].reshape(2, 2))
    assert state.tensors[1].grad is None and state.tensors[2].grad.shape == (1,)
    with pytest.raises(RunFailure, match="the gradients hold"):
        state.load_grads(bytes([1, 0, 1]) + grads[:7].tobytes())
    with pytest.raises(RunFailure, match="initial state holds 4 bytes"):
        ParentState(layout, initial[:1].tobytes())


@pytest.mark.parametrize(
    "layout",
    [
        b"not json",
        b'{"shape": [[2]]}',
        b'{"shape": [[2], [3]], "kind": [2]}',
        b'{"shape": [[-1]], "kind": [2]}',
        b'{"shape": [[2.5]], "kind": [2]}',
        b'{"shape": [[2]], "kind": [3]}',
        b'{"shape": [[2]], "kind": [true]}',
        b"[1, 2]",
    ],
)
def test_parent_state_refuses_a_malformed_layout(layout):
    from mlsbench_env.taskkit.child import RunFailure
    from mlsbench_env.taskkit.torchstate import ParentState

    class Sent:
        name = "training"

        def expect(self, kind, maxlength=1 << 20, size=None):
            return layout

    with pytest.raises(RunFailure, match="protocol error: the training process sent a bad layout"):
        ParentState.receive(Sent())


def test_parent_state_refuses_a_state_over_the_cap_before_reading_it():
    from mlsbench_env.taskkit.child import RunFailure
    from mlsbench_env.taskkit.torchstate import ParentState

    class Sent:
        name = "training"
        frames = [b'{"shape": [[10, 10], [5]], "kind": [2, 0]}']

        def expect(self, kind, maxlength=1 << 20, size=None):
            return self.frames.pop(0)  # a second read would fail: the values are never read

    with pytest.raises(RunFailure, match="parameter cap exceeded: the state holds 105 numbers"):
        ParentState.receive(Sent(), cap=104)


def test_step_reply_packs_losses_mask_and_gradients():
    import struct

    import torch

    from mlsbench_env.taskkit.torchstate import step_reply

    net = torch.nn.Linear(2, 1)
    net(torch.ones(1, 2)).sum().backward()
    net.bias.grad = None
    reply = step_reply(net, (torch.tensor(1.5), 2.5))
    assert struct.unpack("<2f", reply[:8]) == (1.5, 2.5) and reply[8:10] == b"\x01\x00"
    assert np.frombuffer(reply, "<f4", offset=10).tolist() == [1.0, 1.0, 0.0]


def test_artifacts_write_npz_without_pickles(task_dir, tmp_path):
    write_artifacts = importlib.import_module("taskkit").write_artifacts
    out = tmp_path / "out"
    arrays = {"float/w": np.ones((2, 2), np.float32), "codes/w": np.arange(4, dtype=np.uint8)}
    write_artifacts(out, {"ok": True}, npz={"quantized": arrays, "skipped": None})
    assert sorted(p.name for p in out.iterdir()) == ["quantized.npz", "result.json"]
    with np.load(out / "quantized.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["codes/w", "float/w"]
        assert np.array_equal(z["codes/w"], arrays["codes/w"])
    with pytest.raises(ValueError, match="object arrays would be pickled"):
        write_artifacts(out, {}, npz={"bad": {"x": np.array([object()])}})
