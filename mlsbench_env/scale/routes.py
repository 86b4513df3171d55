"""The env server's HTTP API: its wire models and route handlers (``router``: every route under
``/v1``, each behind the server's bearer token when it has one). ``server.create_app`` builds the
app around it.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mlsbench_env.errors import HTTPError, MLSBenchError
from mlsbench_env.scale.sessions import State


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


# ------------------------------------------------------------------------------ routes
UNAUTHORIZED = (
    "missing or wrong bearer token: send 'Authorization: Bearer <token>' (the token "
    "`mlsbench serve` printed, or its --token / MLSBENCH_SERVER_TOKEN)"
)
bearer = HTTPBearer(auto_error=False, description="The token `mlsbench serve` printed.")


def token_ok(given: str | None, token: str | None) -> bool:
    """The bearer credentials match the server's token (constant time); no token: all pass."""
    return token is None or secrets.compare_digest((given or "").encode(), token.encode())


async def _state(request: Request) -> State:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop per request
    return request.app.state.mlsbench


ServerState = Annotated[State, Depends(_state)]


async def require_token(
    state: ServerState, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    if not token_ok(creds.credentials if creds else None, state.cfg.token):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


@router.get("/tasks")
async def tasks(state: ServerState) -> dict:
    """The task ids this server serves."""
    return {"tasks": sorted(state.tasks)}


@router.get("/stats")
async def stats(state: ServerState) -> dict:
    """Pool and session counters (live sandboxes, queued resets, expired sessions)."""
    return {
        "sessions": len(state.sessions),
        "expired": state.expired,
        "snapshots": len(state.snapshots),
        **vars(state.pool.stats),
    }


@router.post("/sessions", response_model=SessionOut, status_code=201)
async def create(req: CreateRequest, state: ServerState):
    """Create an episode's session (call reset next)."""
    s = await state.create(req)
    return json_response(s.out(), 201)


@router.get("/sessions")
async def list_sessions(state: ServerState) -> dict:
    return {"sessions": [s.out() for s in state.sessions.values()]}


@router.get("/sessions/{sid}", response_model=SessionOut)
async def get_session(sid: str, state: ServerState):
    return json_response(state.session(sid).out())


@router.post("/sessions/{sid}/reset", response_model=ResetOut)
async def reset(sid: str, state: ServerState, req: ResetRequest | None = None):
    """Start (or restart) the session's episode; waits for a free sandbox if the pool's
    max_live is reached."""
    req = req or ResetRequest()
    async with state.using(sid) as s:
        obs, info = await s.env.areset(seed=req.seed, options=req.options)
        s.started = True
    return json_response({"observation": obs, "info": info})


@router.post("/sessions/{sid}/step", response_model=StepOut)
async def step(sid: str, req: StepRequest, state: ServerState):
    """One tool call. A malformed action is answered by the episode (200)."""
    async with state.using(sid) as s:
        if not s.started:
            raise HTTPError(409, f"session {sid} has not been reset: POST .../reset first")
        obs, reward, terminated, truncated, info = await s.env.astep(req.action)
    return json_response(
        {
            "observation": obs,
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "info": info,
        }
    )


@router.post("/sessions/{sid}/snapshot", response_model=SnapshotOut)
async def snapshot(sid: str, state: ServerState):
    """Keep the episode's state on the server (``restore`` it into any session)."""
    async with state.using(sid) as s:
        try:
            snap = await s.env.asnapshot()
        except MLSBenchError as e:
            raise HTTPError(409, str(e)) from None
    return json_response({"snapshot_id": state.keep_snapshot(snap), "bytes": snap.nbytes})


@router.post("/sessions/{sid}/restore", response_model=ResetOut)
async def restore(sid: str, req: RestoreRequest, state: ServerState):
    snap = state.snapshots.get(req.snapshot_id)
    if snap is None:
        raise HTTPError(
            404,
            f"unknown snapshot {req.snapshot_id!r} (the server keeps the last "
            f"{state.cfg.max_snapshots})",
        )
    async with state.using(sid) as s:
        try:
            obs = await s.env.arestore(snap)
        except MLSBenchError as e:
            raise HTTPError(409, str(e)) from None
        s.started = True
        budget = s.env.unwrapped.budget.as_dict()
    return json_response({"observation": obs, "info": {"restored": snap.id, "budget": budget}})


@router.delete("/sessions/{sid}")
async def close(sid: str, state: ServerState) -> dict:
    """Close the session: its sandbox and workspace go; its trajectory stays."""
    state.session(sid)
    await state.close(sid)
    return {"closed": sid}


def json_response(payload: Any, status: int = 200) -> Response:
    """Strict JSON (no NaN), numpy scalars and tuples converted, unknown objects as strings."""
    body = json.dumps(payload, default=_jsonable, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json")


def _jsonable(x):
    if hasattr(x, "item"):  # numpy scalars
        return x.item()
    if isinstance(x, tuple | set | frozenset):
        return list(x)
    return str(x)
