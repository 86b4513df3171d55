"""Fast reset: started containers waiting for sandboxes, one pool per container shape per
process, refilled in the background; ``warm_pool`` fills one ahead of time."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox import SandboxConfig
from mlsbench_env.sandbox.docker.container import Container, create
from mlsbench_env.sandbox.docker.options import DockerOptions
from mlsbench_env.sandbox.docker.shape import Shape, pooled_shape, shape_of


class Pool:
    """Started containers of one shape, waiting for sandboxes; refilled in the background."""

    def __init__(self, shape: Shape, size: int):
        self.shape, self.size = shape, size
        self.ready: deque[Container] = deque()
        self.lock = threading.Lock()
        self.filling = False
        self.closed = False

    def take(self) -> Container | None:
        with self.lock:
            got = self.ready.popleft() if self.ready else None
        self.refill()
        return got

    def refill(self) -> None:
        with self.lock:
            if self.filling or self.closed or len(self.ready) >= self.size:
                return
            self.filling = True
        threading.Thread(target=self._fill, name="mlsbench-docker-pool", daemon=True).start()

    def _fill(self) -> None:
        try:
            while True:
                with self.lock:
                    if self.closed or len(self.ready) >= self.size:
                        return
                try:
                    c = create(self.shape)
                except SandboxError:
                    return  # the next take() starts cold and tries again
                with self.lock:
                    if not self.closed:
                        self.ready.append(c)
                        continue
                c.remove()
                return
        finally:
            with self.lock:
                self.filling = False

    def close(self) -> None:
        with self.lock:
            self.closed = True
            items, self.ready = list(self.ready), deque()
        for c in items:
            c.remove()


_POOLS: dict[Shape, Pool] = {}
_POOLS_LOCK = threading.Lock()


def pool(shape: Shape, size: int) -> Pool:
    """This process's pool of ``shape``, holding up to ``size`` containers."""
    with _POOLS_LOCK:
        found = _POOLS.get(shape)
        if found is None or found.closed:
            found = _POOLS[shape] = Pool(shape, size)
        found.size = size
        return found


def _forget_inherited() -> None:
    # A forked child (e.g. an async vector env's worker) must neither use nor shut down its
    # parent's pooled containers: it starts its own.
    global _POOLS_LOCK
    _POOLS_LOCK = threading.Lock()
    _POOLS.clear()


os.register_at_fork(after_in_child=_forget_inherited)


@atexit.register
def shutdown_pools() -> None:
    """Remove every pooled container of this process (also runs at interpreter exit)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for p in pools:
        p.close()


def warm_pool(config: SandboxConfig, options: DockerOptions | None = None, wait_s: float = 0):
    """Start filling the pool for sandboxes like ``config`` (roots beside ``config.root``);
    with ``wait_s``, wait up to that long until it is full. Returns the number ready."""
    options = options or DockerOptions.from_env()
    root = config.root.resolve()
    shape = pooled_shape(shape_of(config, options), root, options)
    if shape is None:
        return 0
    p = pool(shape, options.pool_size)
    p.refill()
    end = time.monotonic() + wait_s
    while len(p.ready) < p.size and time.monotonic() < end:
        time.sleep(0.05)
        p.refill()
    return len(p.ready)
