"""The env server driven by its client over 127.0.0.1: whole episodes, bad requests, auth,
snapshots, and a client killed mid-episode (its session expires, its sandbox is cleaned up)."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env
from test_agent_fakes import EDIT_LINE, PERFECT, tiny_task_once

from mlsbench_env.env import ResearchEnv
from mlsbench_env.errors import RemoteEnvError
from mlsbench_env.scale.client import RemoteEnv
from mlsbench_env.scale.server import ServerConfig, create_app, needs_token

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app (``make_app(cfg)``: ours, or the OpenEnv one) on uvicorn in a thread, on a free
    port of 127.0.0.1."""

    def __init__(self, cfg: ServerConfig, make_app=create_app):
        cfg.port = free_port()
        self.cfg, self.app = cfg, make_app(cfg)
        self.url = f"http://127.0.0.1:{cfg.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=cfg.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def state(self):
        return self.app.state.mlsbench

    def raw(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.cfg.port, timeout=60)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        data = body if isinstance(body, bytes | type(None)) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        out = resp.status, json.loads(resp.read() or b"null")
        conn.close()
        return out


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
    with Server(config(tiny, tmp_path)) as srv:
        yield srv


def test_whole_episode_through_the_client_matches_in_process(server, tiny, tmp_path):
    remote = RemoteEnv(tiny.id, server.url, final_seeds=[0])
    local = ResearchEnv(tiny, runs_dir=None, work_dir=str(tmp_path / "local"), final_seeds=(0,))
    try:
        assert remote.reset(seed=0)[0] == local.reset(seed=0)[0]
        for action in [*PERFECT[:3], "{not json", PERFECT[3]]:
            r = remote.step(action)
            ours = local.step(action if isinstance(action, str) else json.dumps(action))
            assert r[0] == ours[0] and r[1:4] == ours[1:4]
            assert r[4]["budget"]["steps_left"] == ours[4]["budget"]["steps_left"]
        assert r[2] and r[1] == pytest.approx(100.0) and r[4]["score"] == pytest.approx(100.0)
        run_dir = Path(server.state.sessions[remote.session_id].out()["run_dir"])
        assert run_dir.is_relative_to(tmp_path / "runs")  # the server's folders
    finally:
        remote.close()
        local.close()
    assert server.state.sessions == {}


def test_remote_env_passes_gymnasiums_checker(server, tiny):
    env = RemoteEnv(tiny.id, server.url)
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_bad_requests_get_clear_4xx(server, tiny):
    env = RemoteEnv(tiny.id, server.url)
    env.reset(seed=0)
    sid = env.session_id
    status, body = server.raw("POST", "/v1/sessions/nope/step", {"action": "{}"})
    assert status == 404 and "unknown session 'nope'" in body["detail"]
    status, body = server.raw("POST", f"/v1/sessions/{sid}/step", b"{not json")
    assert status == 400 and "not valid JSON" in body["detail"]
    status, body = server.raw("POST", f"/v1/sessions/{sid}/step", {"acton": "x"})
    assert status == 422 and "action: Field required" in body["detail"]
    assert "acton: unknown field" in body["detail"]
    status, body = server.raw("POST", f"/v1/sessions/{sid}/step", {"action": 3})
    assert status == 422 and "action" in body["detail"]
    status, body = server.raw("POST", f"/v1/sessions/{sid}/step", {"action": "x" * (3 << 20)})
    assert status == 413 and f"over the server's limit of {2 << 20} bytes" in body["detail"]
    status, body = server.raw("POST", "/v1/sessions", {"task": "tiny-gues"})
    assert status == 404 and "did you mean 'tiny-guess'" in body["detail"]
    status, body = server.raw("POST", "/v1/sessions", {"task": tiny.id, "options": {"bogus": 1}})
    assert status == 422 and "bogus" in body["detail"]
    status, body = server.raw("POST", "/v1/sessions", {"task": str(tiny.root)})
    assert status == 404  # a path is not a served task: clients cannot load code by path
    with pytest.raises(RemoteEnvError, match="the server's") as e:
        RemoteEnv(tiny.id, server.url, runs_dir="/tmp/elsewhere")
    assert e.value.status == 422
    fresh = RemoteEnv(tiny.id, server.url)
    with pytest.raises(RemoteEnvError, match="has not been reset") as e:
        fresh.step({"tool": "view", "args": {}})
    assert e.value.status == 409
    # a malformed *action* is the episode's business, as in-process: 200, an explanation
    obs, reward, terminated, truncated, info = env.step('{"tool": "frobnicate"}')
    assert "unknown tool 'frobnicate'" in obs and not info["ok"] and not terminated
    env.close()
    fresh.close()


def test_a_chunked_body_is_refused_before_it_is_read(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.cfg.port, timeout=60)
    conn.request("POST", "/v1/sessions", iter([b'{"task": "x"}']), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 411 and "Content-Length" in json.loads(resp.read())["detail"]
    conn.close()


def test_bearer_token_is_required_when_set(tiny, tmp_path):
    assert needs_token("0.0.0.0") and not needs_token("127.0.0.1")
    cfg = ServerConfig(
        runs_dir=None, work_dir=str(tmp_path / "eps"), tasks={tiny.id: str(tiny.root)}, token="s3"
    )
    with Server(cfg) as srv:
        status, body = srv.raw("GET", "/v1/tasks")
        assert status == 401 and "bearer token" in body["detail"]
        status, _ = srv.raw("GET", "/v1/tasks", headers={"Authorization": "Bearer wrong"})
        assert status == 401
        assert srv.raw("GET", "/healthz")[0] == 200
        schemes = srv.raw("GET", "/openapi.json")[1]["components"]["securitySchemes"]
        assert schemes["HTTPBearer"]["scheme"] == "bearer"  # /docs offers to send the token
        with pytest.raises(RemoteEnvError) as e:
            RemoteEnv(tiny.id, srv.url)
        assert e.value.status == 401
        env = RemoteEnv(tiny.id, srv.url, token="s3")
        assert "Research task" in env.reset(seed=0)[0]
        env.close()


def test_snapshots_over_http_restore_identical_observations(server, tiny):
    a = RemoteEnv(tiny.id, server.url)
    a.reset(seed=0)
    a.step(PERFECT[1])
    snap = a.snapshot()
    view = {"tool": "view", "args": {"path": "guess.py"}}
    undo = {"tool": "undo", "args": {}}
    first = [a.step(x)[0] for x in (undo, view)]
    a.restore(snap)
    assert [a.step(x)[0] for x in (undo, view)] == first
    b = RemoteEnv(tiny.id, server.url)  # a branch in another session
    b.restore(snap)
    assert [b.step(x)[0] for x in (undo, view)] == first
    status, body = server.raw("POST", f"/v1/sessions/{b.session_id}/restore", {"snapshot_id": "x"})
    assert status == 404 and "unknown snapshot" in body["detail"]
    a.close()
    b.close()


CLIENT = """
import json, sys
from mlsbench_env.scale.client import RemoteEnv
env = RemoteEnv(sys.argv[1], sys.argv[2])
env.reset(seed=0)
print(env.session_id, flush=True)
env.step({"tool": "shell", "args": {"command": "sleep 3; echo done"}})
print("step returned", flush=True)
"""


def test_a_killed_client_leaves_no_sandbox_behind(tiny, tmp_path):
    with Server(config(tiny, tmp_path, idle_timeout_s=1.0)) as server:
        killed_client(server, tiny)


def killed_client(server, tiny):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, tiny.id, server.url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    sid = client.stdout.readline().strip()
    session = server.state.sessions[sid]
    env = session.env.unwrapped
    executor, episode_dir = env.episode.sandbox._proc, env.episode.episode_dir
    deadline = time.monotonic() + 30
    while not session.busy:  # the step is in flight
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.kill()
    client.wait()
    deadline = time.monotonic() + 60
    while sid in server.state.sessions:  # the step ends, then the session idles out
        assert time.monotonic() < deadline, "the session did not expire"
        time.sleep(0.1)
    assert executor.poll() is not None  # the sandbox's processes are gone
    assert not episode_dir.exists()
    assert server.state.expired >= 1
    # the server is fine and serves new episodes
    env2 = RemoteEnv(tiny.id, server.url)
    assert "Research task" in env2.reset(seed=0)[0]
    env2.close()


def test_mlsbench_serve_runs_the_api(tiny, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlsbench_env.cli",
            "serve",
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
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/openapi.json")
                schema = json.loads(conn.getresponse().read())
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
        assert "/v1/sessions/{sid}/step" in schema["paths"]
        assert "StepRequest" in schema["components"]["schemas"]
        env = RemoteEnv(tiny.id, f"http://127.0.0.1:{port}")
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(PERFECT[0])
        assert f"{EDIT_LINE}*|" in obs
        env.close()
    finally:
        proc.terminate()
        proc.wait(30)
