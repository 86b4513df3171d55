"""The container a sandbox needs: its image, mounts, covered paths, limits and GPUs (``Shape``),
and the engine's HostConfig for it. Sandboxes of one shape share a pool of started containers;
the root, the one thing that differs between them, is bound in at attach."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker

from mlsbench_env.sandbox import SandboxConfig
from mlsbench_env.sandbox.docker.engine import resolve_image
from mlsbench_env.sandbox.docker.options import DockerOptions
from mlsbench_env.sandbox.visibility import inside

STAGE = "/.mlsbench-stage"
IMAGE_SITE_PACKAGES = (
    f"/opt/mlsbench/venv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
)


@dataclass(frozen=True)
class Shape:
    """Everything a container is created with, except the sandbox's own root."""

    image: str
    readable: tuple[str, ...]
    writable: tuple[str, ...]
    hidden_inside: tuple[str, ...]
    memory_mb: int
    processes: int
    network: bool
    options: DockerOptions  # cpus, /tmp and /dev/shm sizes, memory headroom
    gpu_ids: tuple[str, ...] = ()
    hidden_image: tuple[str, ...] = ()  # paths of the image itself to cover (package data)
    stage: str | None = None  # pooled: the parent folder of the roots, mounted at STAGE
    root: str | None = None  # cold: the root, mounted in place
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    read_only_files: bool = False  # files bound read-only at attach (a final run's fixed files)


def host_config_args(shape: Shape) -> dict:
    """The engine's HostConfig for a container of this shape (keyword arguments of the SDK's
    ``create_host_config``)."""
    binds = {}
    opts = shape.options
    tmpfs = {"/tmp": f"size={opts.tmp_mb}m,mode=1777"}
    for p in shape.readable:
        binds[p] = {"bind": p, "mode": "ro"}
    for p in shape.writable:
        binds[p] = {"bind": p, "mode": "rw"}
    if shape.root:
        binds[shape.root] = {"bind": shape.root, "mode": "rw"}
        for p in shape.hidden_inside:  # nothing under them is readable inside
            tmpfs[p] = "size=1m,mode=755,ro"
    for p in shape.hidden_image:
        tmpfs[p] = "size=1m,mode=755,ro"
    if shape.stage:
        binds[shape.stage] = {"bind": STAGE, "mode": "rw"}
        if not inside(shape.stage, "/tmp"):
            tmpfs[shape.stage] = "size=1m,mode=755"  # mount points for roots, nothing else
    mem = shape.memory_mb + opts.memory_headroom_mb + opts.tmp_mb
    return dict(
        binds=binds,
        tmpfs=tmpfs,
        network_mode="bridge" if shape.network else "none",
        read_only=True,
        mem_limit=f"{mem}m",
        memswap_limit=f"{mem}m",
        pids_limit=shape.processes + 16,  # the executor and its helpers on top
        nano_cpus=int(opts.cpus * 1e9) if opts.cpus else None,
        shm_size=f"{opts.shm_mb}m",
        cap_drop=["ALL"],
        # SETUID/SETGID: start commands as the sandbox uid; KILL: stop them; SYS_ADMIN (pooled
        # only): bind the root in at attach, then the executor drops it before any command
        cap_add=["SETUID", "SETGID", "KILL"]
        + (["SYS_ADMIN"] if shape.stage or shape.read_only_files else []),
        security_opt=["no-new-privileges"],
        auto_remove=True,
        device_requests=[
            docker.types.DeviceRequest(device_ids=list(shape.gpu_ids), capabilities=[["gpu"]])
        ]
        if shape.gpu_ids
        else None,
    )


def _in_image(host_path: str) -> str | None:
    """Where a hidden host path that the image also has (a package's data, a system data set)
    lies in the image: site-packages map to the image's venv, which holds the same packages
    for the same Python (images.py); system data paths are the same."""
    if "/site-packages/" in host_path:
        tail = host_path.split("/site-packages/", 1)[1]
        return f"{IMAGE_SITE_PACKAGES}/{tail}"
    if host_path.startswith("/usr/share/"):
        return host_path
    return None


def shape_of(config: SandboxConfig, options: DockerOptions, gpu_ids: tuple = ()) -> Shape:
    """The container a sandbox for ``config`` needs, leaving out its root."""
    root = str(config.root.resolve())
    readable = tuple(str(Path(p).resolve()) for p in config.readable)
    writable = tuple(str(Path(p).resolve()) for p in config.writable)
    mounted = (root, *readable, *writable)
    return Shape(
        image=resolve_image(options),
        readable=readable,
        writable=writable,
        hidden_inside=tuple(
            h
            for h in sorted(str(Path(p).resolve()) for p in config.hidden)
            if any(inside(h, m) and h != m for m in mounted)
        ),
        hidden_image=tuple(
            sorted({q for p in config.hidden if (q := _in_image(str(Path(p).resolve())))})
        ),
        memory_mb=config.memory_mb,
        processes=config.processes,
        network=config.network,
        options=options,
        gpu_ids=gpu_ids,
        read_only_files=bool(config.read_only),
    )


def pooled_shape(shape: Shape, root: Path, options: DockerOptions) -> Shape | None:
    """The pool's shape for this root (its parent staged), or None where it cannot be pooled:
    no pool, GPUs (their ids are fixed at creation), or a parent that is too wide to stage."""
    parent = str(root.parent)
    if options.pool_size <= 0 or shape.gpu_ids or parent == "/":
        return None
    if any(inside(parent, p) for p in (*shape.readable, *shape.writable)):
        return None
    return replace(shape, stage=parent)
