"""``mlsbench serve``: episodes over HTTP, so a trainer on another machine drives them.

JSON API (OpenAPI schema at ``/openapi.json``, browsable at ``/docs``):

- ``POST /v1/sessions`` ``{"task": ID, "options": {...}}`` -> a session id (one per episode)
- ``POST /v1/sessions/{id}/reset`` ``{"seed": 0}`` -> ``{"observation", "info"}``
- ``POST /v1/sessions/{id}/step`` ``{"action": ...}`` -> ``{"observation", "reward",
  "terminated", "truncated", "info"}``
- ``POST /v1/sessions/{id}/snapshot`` -> ``{"snapshot_id"}``; ``POST .../restore``
- ``DELETE /v1/sessions/{id}``; ``GET /v1/sessions``, ``/v1/tasks``, ``/v1/stats``, ``/healthz``

A malformed *request* (unknown session, a body that is not JSON or lacks ``action``, an
oversized body) is a 4xx whose ``detail`` says what was expected. A malformed *action* is part
of the episode, as in-process: a 200 whose observation explains the mistake and costs a step.

Episodes run through an ``EnvPool`` (limits on live sandboxes and running experiments). Sessions
idle longer than ``idle_timeout_s`` are closed and their sandboxes cleaned up, so a client that
disappears mid-episode leaves nothing behind. Only the server's own tasks can be created (the
shipped ones and any given with ``--task``), and runs/work folders are the server's: a client
cannot make the server load code or write files where it chooses. Bound beyond localhost, every
request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlsbench_env.errors import MLSBenchError, UnknownNameError
from mlsbench_env.scale.pool import AsyncEnv, EnvPool

log = logging.getLogger("mlsbench.server")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OPEN_PATHS = {"/healthz"}
SERVER_OWNED = ("runs_dir", "work_dir")


def needs_token(host: str) -> bool:
    return host not in LOOPBACK


# ------------------------------------------------------------------------------ wire models
class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRequest(_Req):
    task: str = Field(description="A task id the server serves (GET /v1/tasks).")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Episode options as for gym.make (max_steps, test_budget, final_seeds, "
        "tools, max_jobs, ...); runs_dir and work_dir are the server's.",
    )


class ResetRequest(_Req):
    seed: int | None = Field(None, description="Seed for reset (recorded in the trajectory).")
    options: dict[str, Any] | None = Field(None, description="Passed to reset(options=...).")


class StepRequest(_Req):
    action: str | dict[str, Any] = Field(
        description='The action: {"tool": NAME, "args": {...}} as a JSON string or object.'
    )


class RestoreRequest(_Req):
    snapshot_id: str = Field(description="From POST /v1/sessions/{id}/snapshot (any session).")


class SessionOut(BaseModel):
    session_id: str
    task: str
    steps: int
    started: bool
    live: bool
    busy: bool
    idle_s: float
    run_dir: str | None


class ResetOut(BaseModel):
    observation: str
    info: dict[str, Any]


class StepOut(BaseModel):
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


class SnapshotOut(BaseModel):
    snapshot_id: str
    bytes: int


# ------------------------------------------------------------------------------ state
@dataclass
class ServerConfig:
    """How the server runs (``mlsbench serve`` options)."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    idle_timeout_s: float = 900.0
    max_sessions: int = 256
    max_body_bytes: int = 2 << 20
    max_snapshots: int = 1024
    runs_dir: str | None = "runs"
    work_dir: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)  # extra task id -> folder
    max_live: int | None = None
    max_experiments: int | None = None
    ramp_per_s: float | None = 4.0


@dataclass
class Session:
    id: str
    task: str
    env: AsyncEnv
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    started: bool = False

    def out(self) -> dict:
        un = self.env.unwrapped
        return {
            "session_id": self.id,
            "task": self.task,
            "steps": getattr(un, "step_count", 0),
            "started": self.started,
            "live": self.env._live,
            "busy": self.busy > 0,
            "idle_s": round(time.monotonic() - self.last_used, 3),
            "run_dir": str(un.run_dir) if getattr(un, "run_dir", None) else None,
        }


class HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


class State:
    """Sessions, snapshots and the pool behind one app."""

    def __init__(self, cfg: ServerConfig):
        from mlsbench_env.spec import builtin_task_ids

        self.cfg = cfg
        self.tasks = {t: t for t in builtin_task_ids()} | dict(cfg.tasks)
        self.sessions: dict[str, Session] = {}
        self.snapshots: OrderedDict[str, Any] = OrderedDict()
        self.pool = EnvPool(
            max_live=cfg.max_live, max_experiments=cfg.max_experiments, ramp_per_s=cfg.ramp_per_s
        )
        self.expired = 0
        self.loaded: dict[str, Any] = {}  # task id -> Task, loaded once per server

    def task(self, tid: str):
        """A served task, loaded on first use only: loading (~40 ms of YAML and checks) runs
        on the event loop, and 64 sessions of one task must not pay it 64 times."""
        if tid not in self.loaded:
            from mlsbench_env.spec import load_task

            self.loaded[tid] = load_task(self.tasks[tid])
        return self.loaded[tid]

    def session(self, sid: str) -> Session:
        s = self.sessions.get(sid)
        if s is None:
            raise HTTPError(
                404,
                f"unknown session {sid!r}: it was closed, or expired after "
                f"{self.cfg.idle_timeout_s:g} s idle; create one with POST /v1/sessions",
            )
        return s

    async def create(self, req: CreateRequest) -> Session:
        if req.task not in self.tasks:
            raise HTTPError(404, str(UnknownNameError("task", req.task, list(self.tasks))))
        owned = [k for k in SERVER_OWNED if k in req.options]
        if owned:
            raise HTTPError(
                422,
                f"options {owned} are the server's (mlsbench serve --runs-dir/--work-dir); "
                "leave them out",
            )
        if len(self.sessions) >= self.cfg.max_sessions:
            raise HTTPError(
                429,
                f"the server holds {len(self.sessions)} sessions (max {self.cfg.max_sessions}); "
                "close finished ones (DELETE /v1/sessions/{id}) or wait for idle ones to expire",
            )
        options = {**req.options, "runs_dir": self.cfg.runs_dir, "work_dir": self.cfg.work_dir}
        if "agent_name" not in options:
            options["agent_name"] = "remote"
        try:
            env = self.pool.make(self.task(req.task), **options)
        except ValidationError as e:
            raise HTTPError(422, "bad options: " + _pydantic_problems(e)) from None
        except (MLSBenchError, TypeError, ValueError) as e:
            raise HTTPError(422, f"cannot create the env: {e}") from None
        s = Session(secrets.token_urlsafe(12), req.task, env)
        self.sessions[s.id] = s
        return s

    @contextlib.asynccontextmanager
    async def using(self, sid: str):
        s = self.session(sid)
        s.busy += 1
        try:
            yield s
        finally:
            s.busy -= 1
            s.last_used = time.monotonic()

    async def close(self, sid: str) -> None:
        s = self.sessions.get(sid)
        if s is not None:
            await s.env.aclose()
            # gone from the table only once its sandbox and folder are released
            self.sessions.pop(sid, None)

    async def sweep(self) -> None:
        """Close sessions idle past the timeout (never one with a request in flight)."""
        now = time.monotonic()
        for s in list(self.sessions.values()):
            if s.busy == 0 and now - s.last_used > self.cfg.idle_timeout_s:
                log.info("session %s expired after %.0f s idle", s.id, now - s.last_used)
                self.expired += 1
                await self.close(s.id)

    def keep_snapshot(self, snap) -> str:
        self.snapshots[snap.id] = snap
        while len(self.snapshots) > self.cfg.max_snapshots:
            self.snapshots.popitem(last=False)
        return snap.id


def _pydantic_problems(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: "
        + ("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        for err in e.errors()
    )


def _json(payload: Any, status: int = 200, headers: dict | None = None):
    from starlette.responses import Response

    body = json.dumps(payload, default=_jsonable, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _jsonable(x):
    if hasattr(x, "item"):  # numpy scalars
        return x.item()
    if isinstance(x, tuple | set | frozenset):
        return list(x)
    return str(x)


# ------------------------------------------------------------------------------ the app
class Guard:
    """ASGI middleware: the bearer token and the body size limit, answered before any work."""

    def __init__(self, app, token: str | None, max_body: int):
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.token and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return await _send(
                    send,
                    401,
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' (the "
                    "token `mlsbench serve` printed, or its --token / MLSBENCH_SERVER_TOKEN)",
                    {"www-authenticate": "Bearer"},
                )
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get(b"content-length")
            if length is None and headers.get(b"transfer-encoding"):
                return await _send(send, 411, "send the body with a Content-Length header")
            if length is not None and not length.isdigit():
                return await _send(send, 400, f"bad Content-Length header {length!r}")
            if length is not None and int(length) > self.max_body:
                return await _send(
                    send,
                    413,
                    f"request body of {int(length)} bytes is over the server's limit of "
                    f"{self.max_body} bytes (mlsbench serve --max-body-bytes)",
                )
        return await self.app(scope, receive, send)


async def _send(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def create_app(cfg: ServerConfig | None = None):
    """The FastAPI app (``pip install 'mlsbench-env[server]'``)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
    except ImportError as e:
        raise MLSBenchError(
            f"the env server needs FastAPI and uvicorn ({e}); install them with: "
            "pip install 'mlsbench-env[server]'"
        ) from None
    from mlsbench_env import __version__

    cfg = cfg or ServerConfig()
    state = State(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def sweeper():
            while True:
                await asyncio.sleep(max(0.2, min(30.0, cfg.idle_timeout_s / 4)))
                try:
                    await state.sweep()
                except Exception:  # keep sweeping whatever one close did
                    log.exception("session sweep failed")

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            for sid in list(state.sessions):
                with contextlib.suppress(Exception):
                    await state.close(sid)
            await state.pool.aclose()

    app = FastAPI(
        title="mlsbench env server",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
    )
    app.state.mlsbench = state
    app.add_middleware(Guard, token=cfg.token, max_body=cfg.max_body_bytes)

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, e: HTTPError):
        return _json({"detail": e.detail}, e.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, e: RequestValidationError):
        errors = e.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return _json({"detail": "the request body is not valid JSON"}, 400)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: "
            + ("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
            for err in errors
        )
        return _json({"detail": f"bad request: {problems} (see /docs for the schema)"}, 422)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True, "sessions": len(state.sessions)}

    @app.get("/v1/tasks")
    async def tasks() -> dict:
        """The task ids this server serves."""
        return {"tasks": sorted(state.tasks)}

    @app.get("/v1/stats")
    async def stats() -> dict:
        """Pool and session counters (live sandboxes, queued resets, expired sessions)."""
        return {
            "sessions": len(state.sessions),
            "expired": state.expired,
            "snapshots": len(state.snapshots),
            **vars(state.pool.stats),
        }

    @app.post("/v1/sessions", response_model=SessionOut, status_code=201)
    async def create(req: CreateRequest):
        """Create an episode's session (call reset next)."""
        s = await state.create(req)
        return _json(s.out(), 201)

    @app.get("/v1/sessions")
    async def list_sessions() -> dict:
        return {"sessions": [s.out() for s in state.sessions.values()]}

    @app.get("/v1/sessions/{sid}", response_model=SessionOut)
    async def get_session(sid: str):
        return _json(state.session(sid).out())

    @app.post("/v1/sessions/{sid}/reset", response_model=ResetOut)
    async def reset(sid: str, req: ResetRequest | None = None):
        """Start (or restart) the session's episode; waits for a free sandbox if the pool's
        max_live is reached."""
        req = req or ResetRequest()
        async with state.using(sid) as s:
            obs, info = await s.env.areset(seed=req.seed, options=req.options)
            s.started = True
        return _json({"observation": obs, "info": info})

    @app.post("/v1/sessions/{sid}/step", response_model=StepOut)
    async def step(sid: str, req: StepRequest):
        """One tool call. A malformed action is answered by the episode (200)."""
        async with state.using(sid) as s:
            if not s.started:
                raise HTTPError(409, f"session {sid} has not been reset: POST .../reset first")
            obs, reward, terminated, truncated, info = await s.env.astep(req.action)
        return _json(
            {
                "observation": obs,
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                "info": info,
            }
        )

    @app.post("/v1/sessions/{sid}/snapshot", response_model=SnapshotOut)
    async def snapshot(sid: str):
        """Keep the episode's state on the server (``restore`` it into any session)."""
        async with state.using(sid) as s:
            try:
                snap = await s.env.asnapshot()
            except MLSBenchError as e:
                raise HTTPError(409, str(e)) from None
        return _json({"snapshot_id": state.keep_snapshot(snap), "bytes": snap.nbytes})

    @app.post("/v1/sessions/{sid}/restore", response_model=ResetOut)
    async def restore(sid: str, req: RestoreRequest):
        snap = state.snapshots.get(req.snapshot_id)
        if snap is None:
            raise HTTPError(
                404,
                f"unknown snapshot {req.snapshot_id!r} (the server keeps the last "
                f"{cfg.max_snapshots})",
            )
        async with state.using(sid) as s:
            try:
                obs = await s.env.arestore(snap)
            except MLSBenchError as e:
                raise HTTPError(409, str(e)) from None
            s.started = True
            budget = s.env.unwrapped.budget.as_dict()
        return _json({"observation": obs, "info": {"restored": snap.id, "budget": budget}})

    @app.delete("/v1/sessions/{sid}")
    async def close(sid: str) -> dict:
        """Close the session: its sandbox and workspace go; its trajectory stays."""
        state.session(sid)
        await state.close(sid)
        return {"closed": sid}

    return app


def serve(cfg: ServerConfig) -> None:
    """Run the server until interrupted."""
    try:
        import uvicorn
    except ImportError as e:
        raise MLSBenchError(
            f"the env server needs uvicorn ({e}); install it with: "
            "pip install 'mlsbench-env[server]'"
        ) from None
    app = create_app(cfg)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_keep_alive=75)


def task_folders(paths: list[str]) -> dict[str, str]:
    """``--task`` folders -> {task id: folder} (validated now, not at the first request)."""
    from mlsbench_env.spec import load_task

    out = {}
    for p in paths:
        task = load_task(Path(p))
        out[task.id] = str(Path(p).resolve())
    return out
