"""The docker engine: this process's client, the sandbox image it runs, and the labels that
tell which process owns a container (so ``gc`` can remove what a dead process left)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox.docker.images import sandbox_tag
from mlsbench_env.sandbox.docker.options import DockerOptions

LABEL = "mlsbench.sandbox"

_client: docker.DockerClient | None = None
_client_lock = threading.Lock()
_checked_images: set[str] = set()


def client() -> docker.DockerClient:
    """The process's engine client (its connection pool is shared by threads)."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                c = docker.from_env(timeout=120, max_pool_size=32)
                c.api.ping()
            except DockerException as e:
                raise SandboxError(
                    f"no Docker engine is reachable ({e}); start dockerd (see docs/docker.md) "
                    "or use sandbox='local'"
                ) from None
            _client = c
        return _client


def _forget_inherited() -> None:
    # A forked child (e.g. an async vector env's worker) must not use its parent's engine
    # connection: it opens its own.
    global _client, _client_lock
    _client, _client_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited)


def resolve_image(options: DockerOptions) -> str:
    tag = options.image if options.image is not None else sandbox_tag()
    if tag not in _checked_images:
        try:
            client().api.inspect_image(tag)
        except ImageNotFound:
            raise SandboxError(
                f"the sandbox image {tag} is not built (it is the current recipe in sandbox/ "
                "with this host's package versions); run: mlsbench images build"
            ) from None
        _checked_images.add(tag)
    return tag


def owner() -> str:
    """host:pid:start-time of this process (a pid alone may be reused after a crash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname():
        return True  # another host's engine client: not ours to judge
    try:
        return _start_time(int(pid)) == started and Path(f"/proc/{pid}").exists()
    except ValueError:
        return False


def gc(everything: bool = False) -> list[str]:
    """Remove leftover sandbox containers: those whose owning process is gone, or stopped
    ones; with ``everything``, every mlsbench sandbox container. Returns their ids."""
    api = client().api
    removed = []
    for info in api.containers(all=True, filters={"label": LABEL}):
        owner = (info.get("Labels") or {}).get("mlsbench.owner", "")
        stale = info.get("State") != "running" or not _owner_alive(owner)
        if everything or stale:
            try:
                api.remove_container(info["Id"], force=True)
                removed.append(info["Id"][:12])
            except (NotFound, APIError):
                pass
    return removed
