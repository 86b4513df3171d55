"""A gymnasium env whose episodes run on an ``mlsbench serve`` server (standard library HTTP).

    env = RemoteEnv("opt-evolution-strategy", "http://gpu-box:8000", token=..., max_steps=40)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step({"tool": "test", "args": {}})
    env.close()

It behaves as the in-process env (same spaces, observations, rewards and info) and works with
gymnasium's wrappers and vector envs, and with ``EnvPool.wrap`` for asyncio.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import gymnasium as gym

from mlsbench_env.env import MAX_OBS_CHARS, FullText
from mlsbench_env.errors import MLSBenchError, RemoteEnvError

TOKEN_ENV = "MLSBENCH_SERVER_TOKEN"
# reconnect before reusing a connection idle this long: the server drops idle ones after 75 s,
# and a request sent on a dropped connection must not be retried blindly (a step is not
# idempotent)
MAX_IDLE_S = 30.0


class RemoteEnv(gym.Env):
    """One episode session on a server; options as for ``gym.make`` (runs/work folders are
    the server's)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task: str,
        url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout_s: float = 3600.0,
        render_mode: str | None = None,
        **options,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MLSBenchError(f"expected a server URL like http://127.0.0.1:8000, got {url!r}")
        self.url, self._parts, self._host = url.rstrip("/"), parts, parts.hostname
        self.token = token or os.environ.get(TOKEN_ENV)
        self.timeout_s = timeout_s
        self.render_mode = render_mode
        self.observation_space = FullText(max_length=MAX_OBS_CHARS, min_length=0)
        self.action_space = FullText(max_length=MAX_OBS_CHARS, min_length=0)
        self._conn: http.client.HTTPConnection | None = None
        self._conn_used = 0.0
        self._last_obs = ""
        self.task_id = task
        self.session_id: str | None = None
        out = self._request("POST", "/v1/sessions", {"task": task, "options": options})
        self.session_id = out["session_id"]

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        out = self._request("POST", self._path("reset"), {"seed": seed, "options": options})
        self._last_obs = out["observation"]
        return out["observation"], out["info"]

    def step(self, action):
        out = self._request("POST", self._path("step"), {"action": action})
        self._last_obs = out["observation"]
        return out["observation"], out["reward"], out["terminated"], out["truncated"], out["info"]

    def render(self):
        return self._last_obs if self.render_mode == "ansi" else None

    def close(self):
        if self.session_id is not None:
            try:
                self._request("DELETE", f"/v1/sessions/{self.session_id}")
            except RemoteEnvError as e:
                if e.status != 404:  # already expired: nothing to close
                    raise
            except OSError:
                pass  # the server is gone; it cleans up its own sessions
            self.session_id = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        super().close()

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> str:
        """Keep the episode's state on the server; returns its id (see ``restore``)."""
        return self._request("POST", self._path("snapshot"))["snapshot_id"]

    def restore(self, snapshot_id: str) -> str:
        """Put this session's episode in a snapshot's state (from any session)."""
        out = self._request("POST", self._path("restore"), {"snapshot_id": snapshot_id})
        self._last_obs = out["observation"]
        return out["observation"]

    # ------------------------------------------------------------------ HTTP
    def _path(self, what: str) -> str:
        if self.session_id is None:
            raise MLSBenchError("this RemoteEnv is closed; make a new one")
        return f"/v1/sessions/{self.session_id}/{what}"

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = self._conn
        if conn is not None and time.monotonic() - self._conn_used <= MAX_IDLE_S:
            return conn, False
        if conn is not None:
            conn.close()
        p = self._parts
        cls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        self._conn = cls(self._host, p.port, timeout=self.timeout_s)
        return self._conn, True

    def _request(self, method: str, path: str, body: Any = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(2):
            conn, fresh = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server had just closed: the request never
                # reached it, so sending it again is safe; a fresh connection failing is real
                conn.close()
                self._conn = None
                if fresh or attempt:
                    raise
        self._conn_used = time.monotonic()
        try:
            out = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            out = {"detail": raw[:500].decode(errors="replace")}
        if resp.status >= 400:
            detail = out.get("detail") if isinstance(out, dict) else out
            raise RemoteEnvError(resp.status, f"{method} {path} -> {resp.status}: {detail}")
        return out
