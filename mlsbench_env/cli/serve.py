"""`mlsbench serve`: episodes over HTTP, with this package's API or an adapter's (OpenEnv)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlsbench_env.cli.app import console, fail
from mlsbench_env.errors import MLSBenchError


def serve(
    host: Annotated[str, typer.Option(help="Interface; beyond localhost a token is required.")] = (
        "127.0.0.1"
    ),
    port: int = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MLSBENCH_SERVER_TOKEN",
            help="Bearer token clients must send (generated and printed when the host is not "
            "localhost and none is given).",
        ),
    ] = None,
    runs_dir: Annotated[str, typer.Option(help="Where episode trajectories go.")] = "runs",
    work_dir: Annotated[str | None, typer.Option(help="Where episode workspaces live.")] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            help="Also serve this task folder, or an MLE-bench competition "
            "mlebench-<id> (docs/mlebench.md) (repeatable).",
        ),
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option(help="Close sessions idle this many seconds (sandbox cleaned up).")
    ] = 900.0,
    max_sessions: int = 256,
    max_live: Annotated[
        int | None, typer.Option(help="Episodes holding a sandbox at once; more resets queue.")
    ] = None,
    max_experiments: Annotated[
        int | None, typer.Option(help="Sandbox commands at once (default: one per CPU core).")
    ] = None,
    ramp_per_s: Annotated[float, typer.Option(help="Episode starts per second (ramp).")] = 4.0,
    max_body_bytes: int = 2 << 20,
    protocol: Annotated[
        str,
        typer.Option(
            help="mlsbench: this package's JSON API (RemoteEnv); openenv: an OpenEnv server "
            "(WebSocket /ws; pip install 'mlsbench-env[openenv]'), see docs/openenv.md.",
        ),
    ] = "mlsbench",
):
    """Serve episodes over HTTP (create/reset/step/close; OpenAPI at /docs) for remote trainers;
    mlsbench_env.scale.client.RemoteEnv is the matching gymnasium env."""
    import secrets

    from mlsbench_env.scale.server import ServerConfig, needs_token, serve, task_folders

    if protocol not in ("mlsbench", "openenv"):
        fail(f"unknown protocol {protocol!r}; known: mlsbench, openenv")

    if needs_token(host) and not token:
        token = secrets.token_urlsafe(24)
        console.print(f"bound beyond localhost: clients must send 'Authorization: Bearer {token}'")
    try:
        cfg = ServerConfig(
            host=host,
            port=port,
            token=token,
            idle_timeout_s=idle_timeout,
            max_sessions=max_sessions,
            max_body_bytes=max_body_bytes,
            runs_dir=runs_dir,
            work_dir=work_dir,
            tasks=task_folders(task or []),
            max_live=max_live,
            max_experiments=max_experiments,
            ramp_per_s=ramp_per_s or None,
        )
        if protocol == "openenv":
            from mlsbench_env.integrations.openenv_server import serve
        console.print(f"mlsbench env server ({protocol}) on http://{host}:{port} (API docs: /docs)")
        serve(cfg)
    except MLSBenchError as e:
        from rich.markup import escape  # the message names extras in brackets

        fail(escape(str(e)))
