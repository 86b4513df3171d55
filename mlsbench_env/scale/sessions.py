"""The env server's state: its sessions (one episode each, through an ``EnvPool``), the
snapshots it keeps, and the idle sweep that closes sessions a client left behind.

``State`` raises ``HTTPError`` for a request it refuses (unknown session or task, options that
are the server's, too many sessions); the apps answer it as a 4xx with its ``detail``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mlsbench_env.errors import HTTPError, MLSBenchError, UnknownNameError
from mlsbench_env.scale.pool import AsyncEnv, EnvPool

if TYPE_CHECKING:
    from mlsbench_env.scale.routes import CreateRequest
    from mlsbench_env.scale.server import ServerConfig

log = logging.getLogger("mlsbench.server")
SERVER_OWNED = ("runs_dir", "work_dir")


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
            raise HTTPError(422, "bad options: " + pydantic_problems(e.errors())) from None
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


def pydantic_problems(errors) -> str:
    """``loc: message; ...`` of pydantic's errors, ``unknown field`` for a misspelt key."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: "
        + ("unknown field" if err["type"] == "extra_forbidden" else err["msg"])
        for err in errors
    )
