"""An OpenEnv server for mlsbench episodes (``mlsbench serve --protocol openenv``).

Built with OpenEnv's own app factory (``openenv.core.env_server.create_app``), so every OpenEnv
client works unchanged: ``GenericEnvClient``, TRL's ``environment_factory`` recipes, verifiers'
``OpenEnvTaskset``, NeMo-Gym's OpenEnv resource server and OpenEnv's inspect bridge.

- One episode per WebSocket connection (``/ws``): ``reset`` takes ``task``, ``seed`` and episode
  options (as ``gym.make``: ``max_steps``, ``final_seeds``, ...); ``step`` takes the action
  ``{"tool": NAME, "args": {...}}``. Args are free-form: a bad argument is answered by the
  episode (an observation that says what was wrong, as in-process), never a validation error.
- The observation is ``text`` plus OpenEnv's ``reward`` and ``done``; ``metadata`` holds the
  tool schemas (at reset), the budgets, ``terminated``/``truncated``, and on the last step the
  score, per-setting scores, tamper report and the sandbox's isolation.
- OpenEnv's HTTP ``/reset`` and ``/step`` make a fresh environment per request and close it
  after, so they cannot carry a multi-turn episode: use the WebSocket (or ``/mcp``) route.
- Sessions share one ``EnvPool`` (``--max-live`` caps the WebSocket sessions and the live
  sandboxes; ``--max-experiments``, ``--ramp-per-s`` as for ``mlsbench serve``). A client that
  disconnects, even mid-step, has its episode closed and its sandbox removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import Field

from mlsbench_env.errors import HTTPError
from mlsbench_env.integrations import isolation_of, mark_harness, require, slim_info
from mlsbench_env.scale.server import BodyLimit, ServerConfig
from mlsbench_env.scale.sessions import State

require("openenv.core.env_server", "openenv")

from openenv.core.env_server import (  # noqa: E402  (after the extra's check)
    Action,
    Environment,
    Observation,
    create_app,
)
from openenv.core.env_server import State as OpenEnvState  # noqa: E402
from openenv.core.env_server.types import (  # noqa: E402
    ConcurrencyConfig,
    EnvironmentMetadata,
)
from starlette.responses import JSONResponse  # noqa: E402

from mlsbench_env.scale.routes import UNAUTHORIZED, CreateRequest, token_ok  # noqa: E402

log = logging.getLogger("mlsbench.openenv")
DEFAULT_TASK = "opt-evolution-strategy"
NO_EPISODE = (
    "No episode: send `reset` first, over the WebSocket route /ws (OpenEnv's HTTP /reset and "
    "/step make a fresh environment per request, so they cannot carry an episode); an episode "
    "idle longer than the server's --idle-timeout is closed."
)


class MlsAction(Action):
    """One tool call. ``args`` is free-form: the episode checks it and answers mistakes."""

    tool: str = Field(description="The tool: view, edit, undo, shell, test, submit (see reset).")
    args: dict[str, Any] | str = Field(
        default_factory=dict, description="The tool's arguments (an object or a JSON string)."
    )


class MlsObservation(Observation):
    text: str = Field("", description="What the tool did (after reset: the task prompt).")


class MlsState(OpenEnvState):
    task: str | None = Field(None, description="The episode's task id.")


class MlsOpenEnv(Environment[MlsAction, MlsObservation, MlsState]):
    """One OpenEnv session: an mlsbench episode from the server's shared pool."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, state: State):
        super().__init__()
        self._state = state  # the server's sessions and pool (mlsbench_env.scale.server.State)
        self._sid: str | None = None
        self._isolation: dict | None = None
        self._episode_id: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ OpenEnv API
    def reset(self, seed=None, episode_id=None, **kwargs) -> MlsObservation:
        raise RuntimeError("MlsOpenEnv runs on the server's event loop (reset_async)")

    def step(self, action, timeout_s=None, **kwargs) -> MlsObservation:
        raise RuntimeError("MlsOpenEnv runs on the server's event loop (step_async)")

    async def reset_async(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task: str | None = None,
        options: dict | None = None,
        **kwargs: Any,
    ) -> MlsObservation:
        """Start an episode of ``task``; episode options come in ``options`` or as extra
        fields of the reset message (as verifiers' ``OpenEnvTaskset`` sends them)."""
        self._loop = asyncio.get_running_loop()
        await self._close_episode()
        opts = {"agent_name": "openenv", **(options or {}), **kwargs}
        try:
            s = await self._state.create(CreateRequest(task=task or DEFAULT_TASK, options=opts))
        except HTTPError as e:
            raise ValueError(e.detail) from None
        self._sid, self._episode_id = s.id, episode_id or s.id
        try:
            async with self._state.using(s.id):
                obs, info = await s.env.areset(seed=seed)
                s.started = True
        except BaseException:
            await self._close_episode()
            raise
        mark_harness(s.env, "openenv")
        # asked in a thread, not on the event loop: the answer waits for the sandbox to be ready
        # (every session's reset would queue behind it); and before any step, as the sandbox
        # answers one caller at a time
        self._isolation = await asyncio.to_thread(isolation_of, s.env)
        meta = {**slim_info(info), "tools": info["tools"]}
        return MlsObservation(text=obs, reward=0.0, done=False, metadata=meta)

    async def step_async(self, action: MlsAction, timeout_s=None, **kwargs) -> MlsObservation:
        if self._sid is None or self._sid not in self._state.sessions:
            return MlsObservation(text=NO_EPISODE, reward=0.0, done=True, metadata={"ok": False})
        async with self._state.using(self._sid) as s:
            obs, reward, term, trunc, info = await s.env.astep(
                {"tool": action.tool, "args": action.args}
            )
        meta = {**slim_info(info, self._isolation), "terminated": term, "truncated": trunc}
        return MlsObservation(text=obs, reward=float(reward), done=term or trunc, metadata=meta)

    @property
    def state(self) -> MlsState:
        s = self._state.sessions.get(self._sid) if self._sid else None
        steps = getattr(s.env.unwrapped, "step_count", 0) if s else 0
        return MlsState(episode_id=self._episode_id, step_count=steps, task=s.task if s else None)

    def get_metadata(self) -> EnvironmentMetadata:
        from mlsbench_env import __version__

        return EnvironmentMetadata(
            name="mlsbench",
            description="ML-science research tasks as multi-turn episodes: read a scaffold, "
            "edit its editable regions, run budgeted tests, submit for a hidden final "
            "evaluation. reset(task=ID, seed=N, **options); step({tool, args}).",
            version=__version__,
        )

    def close(self) -> None:
        """Called by OpenEnv when the session ends (close message, disconnect, idle reap),
        from a worker thread or from the event loop itself."""
        if self._sid is None or self._loop is None or self._loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        fut = asyncio.run_coroutine_threadsafe(self._close_episode(), self._loop)
        if not on_loop:  # a worker thread: return once the sandbox is gone
            with contextlib.suppress(Exception):
                fut.result(timeout=600)

    async def _close_episode(self) -> None:
        sid, self._sid = self._sid, None
        if sid is not None:
            await self._state.close(sid)


class _WSGuard:
    """``mlsbench serve``'s bearer token on OpenEnv's routes, WebSocket included: the routes are
    OpenEnv's (no per-route dependency of ours), so an ASGI middleware checks it."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope["path"] != "/healthz":
            given = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            scheme, _, cred = given.partition(" ")
            if not token_ok(cred if scheme.lower() == "bearer" else None, self.token):
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                headers = {"WWW-Authenticate": "Bearer"}
                response = JSONResponse({"detail": UNAUTHORIZED}, 401, headers=headers)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_openenv_app(cfg: ServerConfig | None = None):
    """OpenEnv's FastAPI app serving the server's tasks; ``app.state.mlsbench`` is the shared
    session table and pool (as ``mlsbench serve``'s)."""
    from functools import partial

    cfg = cfg or ServerConfig()
    state = State(cfg)
    limit = cfg.max_live or cfg.max_sessions
    app = create_app(
        partial(MlsOpenEnv, state),
        MlsAction,
        MlsObservation,
        env_name="mlsbench",
        # session_timeout reaps idle HTTP-MCP sessions; a WebSocket session ends with its socket
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=limit, session_timeout=cfg.idle_timeout_s
        ),
        state_cls=MlsState,
    )
    app.state.mlsbench = state
    sweeper: list[asyncio.Task] = []

    async def sweep_forever():
        # a WebSocket kept open but unused must not hold a sandbox forever (OpenEnv reaps only
        # its HTTP sessions): its episode closes after --idle-timeout, as in `mlsbench serve`
        while True:
            await asyncio.sleep(max(0.2, min(30.0, cfg.idle_timeout_s / 4)))
            try:
                await state.sweep()
            except Exception:
                log.exception("session sweep failed")

    async def startup():
        sweeper.append(asyncio.create_task(sweep_forever()))

    async def shutdown():
        for t in sweeper:
            t.cancel()
        for sid in list(state.sessions):
            with contextlib.suppress(Exception):
                await state.close(sid)
        await state.pool.aclose()

    app.router.on_startup.append(startup)
    app.router.on_shutdown.append(shutdown)
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)
    app.add_middleware(_WSGuard, token=cfg.token)
    return app


def serve(cfg: ServerConfig) -> None:
    import uvicorn

    app = create_openenv_app(cfg)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_keep_alive=75)
