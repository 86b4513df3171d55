"""The OpenEnv server, driven by OpenEnv's own client and checked by its own validator."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_agent_fakes import EDIT_LINE, PERFECT, tiny_task_once

pytest.importorskip("openenv", reason="needs the [openenv] extra")
uvicorn = pytest.importorskip("uvicorn")

from openenv.core.generic_client import GenericEnvClient  # noqa: E402
from test_server import Server, free_port  # noqa: E402

from mlsbench_env.env import ResearchEnv  # noqa: E402
from mlsbench_env.integrations.openenv_server import create_openenv_app  # noqa: E402
from mlsbench_env.scale.server import ServerConfig  # noqa: E402


def same_text(a: str, b: str) -> bool:
    """Observations equal but for the measured compute seconds left in the budget footer."""
    mask = re.compile(r"compute left [\d.]+ s")
    return mask.sub("compute left N s", a) == mask.sub("compute left N s", b)


BAD_ARGS = {"tool": "edit", "args": {"path": "guess.py", "bogus": 1}}


class Loopback(Server):
    """The OpenEnv app on uvicorn in a thread, on a free port (the server tests' harness)."""

    def __init__(self, cfg: ServerConfig):
        super().__init__(cfg, create_openenv_app)

    def wait_no_sessions(self, timeout=60.0):
        """Zero live sandboxes: no session, no pool slot, no episode folder left."""
        deadline = time.monotonic() + timeout
        while self.state.sessions or self.state.pool.stats.live:
            assert time.monotonic() < deadline, f"sessions left: {list(self.state.sessions)}"
            time.sleep(0.05)
        eps = Path(self.cfg.work_dir)
        assert not eps.exists() or not any(eps.glob("ep-*")), list(eps.iterdir())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


def config(tiny, tmp_path, **extra):
    return ServerConfig(
        runs_dir=str(tmp_path / "runs"),
        work_dir=str(tmp_path / "eps"),
        tasks={tiny.id: str(tiny.root)},
        **extra,
    )


@pytest.fixture
def server(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MLSBENCH_SLOTS_DIR", str(tmp_path / "slots"))
    with Loopback(config(tiny, tmp_path)) as srv:
        yield srv


def test_openenv_client_plays_an_episode_to_the_in_process_score(server, tiny, tmp_path):
    local = ResearchEnv(tiny, runs_dir=None, work_dir=str(tmp_path / "local"), final_seeds=(0,))
    try:
        with GenericEnvClient(base_url=server.url).sync() as env:
            r = env.reset(task=tiny.id, seed=0, final_seeds=[0])
            obs, info = local.reset(seed=0)
            assert r.observation["text"] == obs and r.done is False
            assert r.metadata["tools"] == info["tools"]  # the schemas travel at reset
            assert r.metadata["budget"] == info["budget"]
            for action in [PERFECT[0], PERFECT[1], BAD_ARGS, "{not json", *PERFECT[2:]]:
                step = action if isinstance(action, dict) else {"tool": "view", "args": action}
                r = env.step(step)
                ours = local.step(json.dumps(step))
                # a bad argument is the episode's observation (never a protocol error)
                assert same_text(r.observation["text"], ours[0])
                assert (r.reward, r.done) == (ours[1], ours[2] or ours[3])
                for k in ("steps_left", "tests_left"):  # compute seconds are measured
                    assert r.metadata["budget"][k] == ours[4]["budget"][k]
            assert r.done and r.metadata["terminated"] and r.reward == pytest.approx(100.0)
            assert r.metadata["score"] == ours[4]["score"]
            assert r.metadata["setting_scores"] == ours[4]["setting_scores"]
            assert r.metadata["tamper_report"] == []
            assert set(r.metadata["isolation"]) >= {"network", "pid", "limits"}
            assert "final_runs" not in r.metadata and "tools" not in r.metadata
            after = env.step(PERFECT[0])  # the episode is over: said so, reward 0
            assert after.done and after.reward == 0.0
        server.wait_no_sessions()
    finally:
        local.close()
    # the trajectory says which harness drove the episode
    (traj,) = Path(server.cfg.runs_dir).glob("*/trajectory.jsonl")
    records = [json.loads(line) for line in traj.read_text().splitlines()]
    harness = next(r for r in records if r.get("type") == "harness")
    assert harness["framework"] == "openenv" and harness["version"]


async def _group(url: str, task: str, n: int) -> list[str]:
    """A GRPO group: n sessions open at once, each reset, then one view each."""
    clients = [GenericEnvClient(base_url=url) for _ in range(n)]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        resets = await asyncio.gather(*(c.reset(task=task, seed=i) for i, c in enumerate(clients)))
        views = await asyncio.gather(*(c.step(PERFECT[0]) for c in clients))
        return [r.observation["text"] for r in resets] + [v.observation["text"] for v in views]
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def test_eight_sessions_are_open_at_once(tiny, tmp_path):
    with Loopback(config(tiny, tmp_path, max_live=8, ramp_per_s=None)) as server:
        texts = asyncio.run(_group(server.url, tiny.id, 8))
        assert all("Research task" in t for t in texts[:8])
        assert all(f"{EDIT_LINE}*|" in t for t in texts[8:])
        assert server.state.pool.stats.peak_live == 8
        server.wait_no_sessions()


def test_sessions_beyond_max_live_are_refused_clearly(tiny, tmp_path):
    with Loopback(config(tiny, tmp_path, max_live=1)) as server:
        with GenericEnvClient(base_url=server.url).sync() as first:
            first.reset(task=tiny.id, seed=0)
            with pytest.raises(RuntimeError, match="CAPACITY_REACHED"):
                with GenericEnvClient(base_url=server.url).sync() as second:
                    second.reset(task=tiny.id, seed=0)
        server.wait_no_sessions()


def test_reset_errors_are_clear_and_leave_nothing(server, tiny):
    with GenericEnvClient(base_url=server.url).sync() as env:
        with pytest.raises(RuntimeError, match="unknown task 'tiny-gues'; did you mean"):
            env.reset(task="tiny-gues")
        with pytest.raises(RuntimeError, match="are the server's"):
            env.reset(task=tiny.id, runs_dir="/tmp/elsewhere")
        with pytest.raises(RuntimeError, match="max_steps"):
            env.reset(task=tiny.id, max_steps=0)
        # the connection still serves an episode
        assert "Research task" in env.reset(task=tiny.id, seed=0).observation["text"]
    server.wait_no_sessions()


CLIENT = """
import sys
from openenv.core.generic_client import GenericEnvClient
env = GenericEnvClient(base_url=sys.argv[1]).sync()
env.reset(task=sys.argv[2], seed=0)
print("reset", flush=True)
env.step({"tool": "shell", "args": {"command": "sleep 3; echo done"}})
print("step returned", flush=True)
"""


def test_a_client_killed_mid_step_leaves_no_sandbox(server, tiny):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, server.url, tiny.id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert client.stdout.readline().strip() == "reset"
    (session,) = server.state.sessions.values()
    env = session.env.unwrapped
    proc, episode_dir = env.episode.sandbox._proc, env.episode.episode_dir
    deadline = time.monotonic() + 30
    while not session.busy:  # the step is in flight
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.kill()
    client.wait()
    server.wait_no_sessions()  # the step ends, the socket is found closed, the episode goes
    assert proc.poll() is not None and not episode_dir.exists()


def test_http_routes_are_stateless_and_say_so(server, tiny):
    import http.client

    def post(path, body):
        conn = http.client.HTTPConnection("127.0.0.1", server.cfg.port, timeout=60)
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())

    status, body = post("/step", {"action": PERFECT[0]})
    assert (
        status == 200 and body["done"] and "over the WebSocket route" in body["observation"]["text"]
    )
    status, body = post("/reset", {"task": tiny.id, "seed": 0})
    assert status == 200 and "Research task" in body["observation"]["text"]
    server.wait_no_sessions()  # the per-request env was closed


# OpenEnv's CLI: next to this interpreter (a virtual environment not on PATH) or on PATH
OPENENV_CLI = shutil.which("openenv", path=str(Path(sys.executable).parent)) or shutil.which(
    "openenv"
)


@pytest.mark.skipif(OPENENV_CLI is None, reason="needs the openenv CLI")
def test_mlsbench_serve_openenv_passes_openenv_validate(tiny, tmp_path):
    """`mlsbench serve --protocol openenv`, probed by OpenEnv's own runtime validator."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlsbench_env.cli",
            "serve",
            "--protocol",
            "openenv",
            "--port",
            str(port),
            "--task",
            str(tiny.root),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--work-dir",
            str(tmp_path / "eps"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run(
                [OPENENV_CLI, "validate", "--url", url, "--json"], capture_output=True, text=True
            )
            report = json.loads(out.stdout) if out.stdout.startswith("{") else None
            if report and report["criteria"][0]["passed"]:
                break
            assert time.monotonic() < deadline and proc.poll() is None, out.stdout + out.stderr
            time.sleep(0.5)
        failed = [c["id"] for c in report["criteria"] if not c["passed"]]
        assert out.returncode == 0 and report["passed"] and failed == [], report
        assert report["mode"] == "simulation"
        with GenericEnvClient(base_url=url).sync() as env:
            assert "Research task" in env.reset(task=tiny.id, seed=0).observation["text"]
        deadline = time.monotonic() + 30
        while any((tmp_path / "eps").glob("ep-*")):  # the closed session's sandbox goes
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)


def test_an_idle_session_is_closed_after_the_idle_timeout(tiny, tmp_path):
    """A WebSocket kept open but unused gives its sandbox back; the socket says so."""
    with Loopback(config(tiny, tmp_path, idle_timeout_s=1.0)) as server:
        with GenericEnvClient(base_url=server.url).sync() as env:
            env.reset(task=tiny.id, seed=0)
            server.wait_no_sessions(timeout=30)
            r = env.step(PERFECT[0])
            assert r.done and "idle longer than" in r.observation["text"]
            assert server.state.expired == 1
