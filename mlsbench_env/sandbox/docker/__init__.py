"""The `docker` backend: one container per sandbox, commands through a trusted executor inside.

Each sandbox is a container of the image built from sandbox/ (``mlsbench images build``,
``images.py``): no network, memory/CPU/pids limits, a read-only root filesystem with a
size-capped tmpfs /tmp, every capability dropped but the few the executor needs, and
no-new-privileges. The sandbox's folder (``config.root``) and ``writable`` folders are
bind-mounted read-write at the same paths as on the host (the host reads artifacts and runs the
graders there), ``readable`` ones read-only, ``read_only`` files bound read-only at attach;
nothing else of the host exists inside, so hidden paths are simply absent (``visibility.py``
says what a sandbox sees, for every backend; ``shape.py`` turns it into a container).

Steps do not pay ``docker exec``: the container's PID 1 is mlsbench's executor (``executor/``,
its program passed as an argument, so no mount names the host's checkout) reached over the
container's attached stdio (``container.py``). It stays root and runs each command as an
unprivileged uid, a fresh bash process with rlimits, so commands can neither read nor write its
channel (the trusted metrics channel stays out of reach) nor signal it. When the host process
goes away the attach stream closes, the executor kills everything and exits, and the engine
removes the container (``auto_remove``); ``mlsbench sandbox gc`` removes what a dead engine
connection left (``engine.py``).

Fast reset (``pool.py``): containers are started ahead of time in a per-process pool, one per
container shape (image, limits, the folder holding the sandbox roots, readable and writable
folders). A pooled container mounts that parent folder at a staging path; taking one binds the
new root into place, unmounts the staging path and gives up CAP_SYS_ADMIN before any command
runs (``attach`` in the executor). Sandboxes with GPUs, or whose root has no usable parent,
start cold.

GPUs: ``config.gpus = N`` takes N distinct GPU ids from ``gpus.GpuAllocator`` and passes them as
a device request; commands then report GPU utilization and memory, and ``compute_s`` is
wall x N.

The docker SDK is an optional extra: importing this package does not import it; the names below
load their module (and the SDK) when first used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DockerSandbox": "backend",
    "DockerOptions": "options",
    "client": "engine",
    "gc": "engine",
    "resolve_image": "engine",
    "LABEL": "engine",
    "IMAGE_SITE_PACKAGES": "shape",
    "warm_pool": "pool",
    "shutdown_pools": "pool",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
