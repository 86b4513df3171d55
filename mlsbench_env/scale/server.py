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
``/v1`` request needs ``Authorization: Bearer <token>`` (``/healthz`` and the schema are open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mlsbench_env.errors import HTTPError, MLSBenchError
from mlsbench_env.scale.sessions import State, pydantic_problems

log = logging.getLogger("mlsbench.server")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def needs_token(host: str) -> bool:
    return host not in LOOPBACK


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


# ------------------------------------------------------------------------------ body size
class BodyLimit:
    """ASGI middleware: refuse a body over ``max_body_bytes`` from its Content-Length, before
    any of it is read (FastAPI reads a route's whole body before its dependencies run). Plain
    ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware wraps every
    request in a task and streams, which cost ~0.4 ms a step and a third of the server's
    throughput (benchmarks/bench_adapters.py)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            problem = self._problem(dict(scope["headers"]))
            if problem:
                from starlette.responses import JSONResponse

                await JSONResponse({"detail": problem[1]}, problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        length = headers.get(b"content-length")
        if length is None:
            if headers.get(b"transfer-encoding"):
                return 411, "send the body with a Content-Length header"
            return None
        if not length.isdigit():
            return 400, f"bad Content-Length header {length.decode(errors='replace')!r}"
        if int(length) > self.limit:
            return (
                413,
                f"request body of {int(length)} bytes is over the server's limit of "
                f"{self.limit} bytes (mlsbench serve --max-body-bytes)",
            )
        return None


# ------------------------------------------------------------------------------ the app
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
    from mlsbench_env.scale.routes import json_response, router

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
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    app.include_router(router)

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, e: HTTPError):
        return json_response({"detail": e.detail}, e.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, e: RequestValidationError):
        errors = e.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return json_response({"detail": "the request body is not valid JSON"}, 400)
        problems = pydantic_problems(errors)
        return json_response({"detail": f"bad request: {problems} (see /docs for the schema)"}, 422)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True, "sessions": len(state.sessions)}

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
        if p.startswith("mlebench-"):  # an MLE-bench competition (docs/mlebench.md), by id
            out[load_task(p).id] = p
            continue
        task = load_task(Path(p))
        out[task.id] = str(Path(p).resolve())
    return out
