"""`mlsbench images` and `mlsbench sandbox`: the docker backend's images, containers and GPUs."""

from __future__ import annotations

from typing import Annotated

import typer

from mlsbench_env.cli.app import console, fail
from mlsbench_env.errors import MLSBenchError

images_app = typer.Typer(no_args_is_help=True, help="Sandbox images of the docker backend.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox containers and devices.")


@images_app.command("build")
def images_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if the recipe is unchanged.")] = False,
):
    """Build the sandbox images from sandbox/ where the recipe changed (no registry pulls)."""
    from mlsbench_env.sandbox.docker import images

    try:
        tag = images.build(force=force, log=lambda m: console.print(m, markup=False))
    except MLSBenchError as e:
        fail(e, 1)
    console.print(f"sandbox image: {tag}")


@images_app.command("list")
def images_list(
    prune: Annotated[bool, typer.Option(help="Remove images of older recipes.")] = False,
):
    """List mlsbench images; the current recipe's are marked."""
    from mlsbench_env.sandbox.docker import images

    try:
        for row in images.listing():
            mark = "[green]current[/green]" if row["current"] else "stale"
            console.print(f"{row['tag']}  {row['size_mb']:.0f} MB  {mark}")
        if prune:
            for tag in images.remove_stale():
                console.print(f"removed {tag}")
    except MLSBenchError as e:
        fail(e, 1)


@sandbox_app.command("gc")
def sandbox_gc(
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every mlsbench container, live ones too.")
    ] = False,
):
    """Remove leftover sandbox containers (their process is gone, or they stopped)."""
    try:
        from mlsbench_env.sandbox.docker import gc
    except ImportError:
        fail("install the docker SDK: pip install 'mlsbench-env[docker]'", 1)
    try:
        removed = gc(everything=all_)
    except MLSBenchError as e:
        fail(e, 1)
    console.print(f"removed {len(removed)} container(s)" + "".join(f" {c}" for c in removed))


@sandbox_app.command("info")
def sandbox_info():
    """The docker engine, the sandbox image the current recipe needs, and this host's GPUs."""
    from mlsbench_env.sandbox.docker import images
    from mlsbench_env.sandbox.gpus import describe

    console.print(describe())
    try:
        from mlsbench_env.sandbox.docker import LABEL, client

        api = client().api
        version = api.version()
        console.print(f"engine: Docker {version.get('Version')} (API {version.get('ApiVersion')})")
        tag = images.sandbox_tag()
        built = "built" if images.exists(tag) else "not built: run `mlsbench images build`"
        console.print(f"image: {tag} ({built})")
        running = api.containers(filters={"label": LABEL})
        console.print(f"sandbox containers running: {len(running)}")
    except (ImportError, MLSBenchError) as e:
        console.print(f"engine: unavailable ({e})")
