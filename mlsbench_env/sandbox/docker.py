"""The `docker` backend: one container per sandbox, commands through a trusted executor inside.

Each sandbox is a container of the image built from sandbox/ (``mlsbench images build``): no
network, memory/CPU/pids limits, a read-only root filesystem with a size-capped tmpfs /tmp, every
capability dropped but the few the executor needs, and no-new-privileges. The sandbox's folder
(``config.root``) and ``writable`` folders are bind-mounted read-write at the same paths as on
the host (the host reads artifacts and runs the graders there), ``readable`` ones read-only,
``read_only`` files bound read-only at attach; nothing else of the host exists inside, so hidden
paths are simply absent (``view.py`` says what a sandbox sees, for every backend).

Steps do not pay ``docker exec``: the container's PID 1 is mlsbench's executor (``executor.py``,
its source passed as an argument, so no mount names the host's checkout) reached over the
container's attached stdio (JSON lines; there is no
network to reach it through). It stays root and runs each command as an unprivileged uid, a
fresh bash process with rlimits, so commands can neither read nor write its channel (the
trusted metrics channel stays out of reach) nor signal it. When the host process goes away the
attach stream closes, the executor kills everything and exits, and the engine removes the
container (``auto_remove``); ``mlsbench sandbox gc`` removes what a dead engine connection left.

Fast reset: containers are started ahead of time in a per-process pool, one per container shape
(image, limits, the folder holding the sandbox roots, readable and writable folders). A pooled
container mounts that parent folder at a staging path; taking one binds the new root into place,
unmounts the staging path and gives up CAP_SYS_ADMIN before any command runs (see ``attach`` in
``executor.py``). Sandboxes with GPUs, or whose root has no usable parent, start cold.

GPUs: ``config.gpus = N`` takes N distinct GPU ids from ``gpus.GpuAllocator`` and passes them as
a device request; commands then report GPU utilization and memory, and ``compute_s`` is
wall x N.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox import ExecResult, SandboxConfig
from mlsbench_env.sandbox.gpus import GpuAllocator, GpuLease, GpuSampler, announce
from mlsbench_env.sandbox.local import EXECUTOR, SANDBOX_UIDS

STAGE = "/.mlsbench-stage"
IMAGE_SITE_PACKAGES = (
    f"/opt/mlsbench/venv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
)
CONTAINER_PATH = "/opt/mlsbench/venv/bin:/usr/local/bin:/usr/bin:/bin"
LABEL = "mlsbench.sandbox"
START_TIMEOUT_S = 60.0
REPLY_GRACE_S = 30.0  # beyond a command's own timeout, before the executor counts as hung
# commands, not the executor, are what the kernel's OOM killer should pick inside the container
OOM_PREFIX = "{ echo 1000 > /proc/self/oom_score_adj; } 2>/dev/null; "


@dataclass(frozen=True)
class DockerOptions:
    """Backend settings beyond ``SandboxConfig`` (environment: ``MLSBENCH_DOCKER_*``)."""

    image: str | None = None
    """Image tag; default: the tag of the current recipe (``images.sandbox_tag()``)."""
    pool_size: int = 2
    """Started containers kept ready per container shape; 0 disables the pool."""
    cpus: float | None = 2.0
    """CPU quota per container (None: no quota)."""
    tmp_mb: int = 256
    """Size of the container's /tmp (a tmpfs, counted in its memory)."""
    shm_mb: int = 64
    memory_headroom_mb: int = 256
    """Container memory = the commands' ``memory_mb`` + this + ``tmp_mb`` (executor, helpers)."""
    gpu_sample_s: float = 1.0

    @classmethod
    def from_env(cls) -> DockerOptions:
        env, o = os.environ, cls()
        cpus = env.get("MLSBENCH_DOCKER_CPUS")
        return replace(
            o,
            image=env.get("MLSBENCH_DOCKER_IMAGE") or o.image,
            pool_size=int(env.get("MLSBENCH_DOCKER_POOL", o.pool_size)),
            cpus=o.cpus if cpus is None else (float(cpus) or None),
        )


# ---------------------------------------------------------------------------- engine access
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


def resolve_image(options: DockerOptions) -> str:
    tag = options.image
    if tag is None:
        from mlsbench_env.sandbox.images import sandbox_tag

        tag = sandbox_tag()
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


def _owner() -> str:
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


# ---------------------------------------------------------------------------- the channel
class _Channel:
    """JSON lines to and from the executor over the attach socket (stdout frames demuxed)."""

    def __init__(self, sock):
        self.sock = getattr(sock, "_sock", sock)  # SocketIO -> socket
        self._keep = sock  # keeps the HTTP response (and the connection) alive
        self.buf = bytearray()
        self.pending = bytearray()
        self.stderr = bytearray()

    def send(self, obj: dict) -> None:
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self.pending) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            data = self.sock.recv(max(65536, n - len(self.pending)))
            if not data:
                raise EOFError
            self.pending += data
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def recv(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            header = self._recv_exact(8, deadline)
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = self._recv_exact(size, deadline)
            if stream == 2:
                self.stderr = (self.stderr + payload)[-4000:]
            else:
                self.buf += payload
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return json.loads(line)

    def close(self) -> None:
        for fn in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                fn()
            except OSError:
                pass


@dataclass
class _Container:
    id: str
    channel: _Channel
    landlock: int = 0  # the Landlock ABI the executor found in the container

    def remove(self) -> None:
        self.channel.close()
        try:
            client().api.remove_container(self.id, force=True)
        except (NotFound, APIError):
            pass  # already gone (auto_remove) or being removed


# ---------------------------------------------------------------------------- container shapes
@dataclass(frozen=True)
class _Shape:
    """Everything a container is created with, except the sandbox's own root."""

    image: str
    readable: tuple[str, ...]
    writable: tuple[str, ...]
    hidden_inside: tuple[str, ...]
    memory_mb: int
    processes: int
    network: bool
    cpus: float | None
    tmp_mb: int
    shm_mb: int
    headroom_mb: int
    gpu_ids: tuple[str, ...] = ()
    hidden_image: tuple[str, ...] = ()  # paths of the image itself to cover (package data)
    stage: str | None = None  # pooled: the parent folder of the roots, mounted at STAGE
    root: str | None = None  # cold: the root, mounted in place
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    read_only_files: bool = False  # files bound read-only at attach (a final run's fixed files)


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def host_config_args(shape: _Shape) -> dict:
    """The engine's HostConfig for a container of this shape (keyword arguments of the SDK's
    ``create_host_config``)."""
    binds = {}
    tmpfs = {"/tmp": f"size={shape.tmp_mb}m,mode=1777"}
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
        if not _inside(shape.stage, "/tmp"):
            tmpfs[shape.stage] = "size=1m,mode=755"  # mount points for roots, nothing else
    mem = shape.memory_mb + shape.headroom_mb + shape.tmp_mb
    return dict(
        binds=binds,
        tmpfs=tmpfs,
        network_mode="bridge" if shape.network else "none",
        read_only=True,
        mem_limit=f"{mem}m",
        memswap_limit=f"{mem}m",
        pids_limit=shape.processes + 16,  # the executor and its helpers on top
        nano_cpus=int(shape.cpus * 1e9) if shape.cpus else None,
        shm_size=f"{shape.shm_mb}m",
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


def _create(shape: _Shape) -> _Container:
    api = client().api
    host_config = api.create_host_config(**host_config_args(shape))
    config = json.dumps({"attach": True})
    try:
        cid = api.create_container(
            shape.image,
            # the executor's source as an argument, not a bind of the host's file: nothing in
            # the container (its mounts, /proc/1/cmdline) names a folder of the host
            ["/usr/bin/python3", "-I", "-S", "-c", EXECUTOR.read_text(), config],
            stdin_open=True,  # with detach=False: StdinOnce, so our leaving closes its stdin
            detach=False,
            tty=False,
            host_config=host_config,
            labels={LABEL: "1", "mlsbench.owner": _owner(), **dict(shape.labels)},
            working_dir="/",
            environment={"PATH": CONTAINER_PATH, "LANG": "C.UTF-8"},
        )["Id"]
    except APIError as e:
        raise SandboxError(f"docker could not create the sandbox container: {e}") from None
    container = None
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        container = _Container(cid, _Channel(sock))
        api.start(cid)
        ready = container.channel.recv(START_TIMEOUT_S)
        if not ready.get("ready"):
            raise SandboxError(f"unexpected first line from the executor: {ready}")
        container.landlock = int(ready.get("landlock") or 0)
    except (DockerException, OSError, EOFError, TimeoutError, ValueError) as e:
        err = bytes(container.channel.stderr).decode(errors="replace") if container else ""
        _remove_quietly(cid, container)
        raise SandboxError(f"the sandbox container did not start ({e!r}) {err}") from None
    except BaseException:
        _remove_quietly(cid, container)
        raise
    return container


def _remove_quietly(cid: str, container: _Container | None) -> None:
    if container is not None:
        container.channel.close()
    try:
        client().api.remove_container(cid, force=True)
    except DockerException:
        pass


class _Pool:
    """Started containers of one shape, waiting for sandboxes; refilled in the background."""

    def __init__(self, shape: _Shape, size: int):
        self.shape, self.size = shape, size
        self.ready: deque[_Container] = deque()
        self.lock = threading.Lock()
        self.filling = False
        self.closed = False

    def take(self) -> _Container | None:
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
                    c = _create(self.shape)
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


_POOLS: dict[_Shape, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(shape: _Shape, size: int) -> _Pool:
    with _POOLS_LOCK:
        pool = _POOLS.get(shape)
        if pool is None or pool.closed:
            pool = _POOLS[shape] = _Pool(shape, size)
        pool.size = size
        return pool


def _forget_inherited() -> None:
    # A forked child (e.g. an async vector env's worker) must neither use nor shut down its
    # parent's engine connection and pooled containers: it starts its own.
    global _client, _client_lock, _POOLS_LOCK
    _client, _client_lock, _POOLS_LOCK = None, threading.Lock(), threading.Lock()
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


def shape_of(config: SandboxConfig, options: DockerOptions, gpu_ids: tuple = ()) -> _Shape:
    """The container a sandbox for ``config`` needs, leaving out its root."""
    root = str(config.root.resolve())
    readable = tuple(str(Path(p).resolve()) for p in config.readable)
    writable = tuple(str(Path(p).resolve()) for p in config.writable)
    mounted = (root, *readable, *writable)
    return _Shape(
        image=resolve_image(options),
        readable=readable,
        writable=writable,
        hidden_inside=tuple(
            h
            for h in sorted(str(Path(p).resolve()) for p in config.hidden)
            if any(_inside(h, m) and h != m for m in mounted)
        ),
        hidden_image=tuple(
            sorted({q for p in config.hidden if (q := _in_image(str(Path(p).resolve())))})
        ),
        memory_mb=config.memory_mb,
        processes=config.processes,
        network=config.network,
        cpus=options.cpus,
        tmp_mb=options.tmp_mb,
        shm_mb=options.shm_mb,
        headroom_mb=options.memory_headroom_mb,
        gpu_ids=gpu_ids,
        read_only_files=bool(config.read_only),
    )


def pooled_shape(shape: _Shape, root: Path, options: DockerOptions) -> _Shape | None:
    """The pool's shape for this root (its parent staged), or None where it cannot be pooled:
    no pool, GPUs (their ids are fixed at creation), or a parent that is too wide to stage."""
    parent = str(root.parent)
    if options.pool_size <= 0 or shape.gpu_ids or parent == "/":
        return None
    if any(_inside(parent, p) for p in (*shape.readable, *shape.writable)):
        return None
    return replace(shape, stage=parent)


def warm_pool(config: SandboxConfig, options: DockerOptions | None = None, wait_s: float = 0):
    """Start filling the pool for sandboxes like ``config`` (roots beside ``config.root``);
    with ``wait_s``, wait up to that long until it is full. Returns the number ready."""
    options = options or DockerOptions.from_env()
    root = config.root.resolve()
    shape = pooled_shape(shape_of(config, options), root, options)
    if shape is None:
        return 0
    pool = _pool(shape, options.pool_size)
    pool.refill()
    end = time.monotonic() + wait_s
    while len(pool.ready) < pool.size and time.monotonic() < end:
        time.sleep(0.05)
        pool.refill()
    return len(pool.ready)


# ---------------------------------------------------------------------------- the backend
class DockerSandbox:
    def __init__(self, config: SandboxConfig, options: DockerOptions | None = None):
        self.config = config
        self.options = options or DockerOptions.from_env()
        self._lock = threading.Lock()
        self._closed = False
        self._container: _Container | None = None
        self.lease: GpuLease = GpuAllocator().acquire(config.gpus)
        self.compute_s = 0.0
        self.pooled = False
        announce()
        root = config.root.resolve()
        if os.geteuid() == 0:  # a private uid: its process limit counts only this sandbox
            self.uid = self.gid = random.randint(*SANDBOX_UIDS)
            for path in (root, *config.writable):
                _chown_tree(Path(path), self.uid)
        else:  # the engine maps no users: files written inside must stay ours
            self.uid, self.gid = os.getuid(), os.getgid()
        try:
            self._container = self._start(root)
        except BaseException:
            self.lease.release()
            raise

    def _start(self, root: Path) -> _Container:
        shape = shape_of(self.config, self.options, tuple(self.lease.ids))
        pool_shape = pooled_shape(shape, root, self.options)
        attach: dict = {"run_as": [self.uid, self.gid]}
        container = _pool(pool_shape, self.options.pool_size).take() if pool_shape else None
        if container is not None:
            self.pooled = True
            attach |= {
                "bind": [[f"{STAGE}/{root.name}", str(root), False]],
                "hide": list(shape.hidden_inside),
                "unmount": [STAGE],
            }
        else:
            labels = (("mlsbench.root", str(root)),)
            container = _create(replace(shape, root=str(root), labels=labels))
        attach.setdefault("bind", [])
        attach["bind"] += [[str(p), str(p), True] for p in self.config.read_only]
        try:
            container.channel.send({"attach": attach})
            answer = container.channel.recv(START_TIMEOUT_S)
            if not answer.get("attached"):
                raise SandboxError(f"the sandbox container refused its episode: {answer}")
        except (OSError, EOFError, TimeoutError, ValueError) as e:
            container.remove()
            raise SandboxError(f"the sandbox container did not attach ({e!r})") from None
        except BaseException:
            container.remove()
            raise
        return container

    @property
    def container_id(self) -> str | None:
        return self._container.id if self._container else None

    def isolation(self) -> dict[str, bool]:
        return {
            "network": not self.config.network,
            "pid": True,
            "mounts": True,
            "user": self.uid != 0,
            "limits": True,
            "landlock": bool(self._container and self._container.landlock),
        }

    def exec(
        self,
        command: str,
        *,
        timeout: float,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        max_output_bytes: int = 1 << 20,
        secrets: dict[str, str] | None = None,
    ) -> ExecResult:
        c = self.config
        request = {
            "cmd": OOM_PREFIX + command,
            "cwd": str(c.root / cwd if cwd else c.root),
            "timeout": timeout,
            "max_output": max_output_bytes,
            "secrets": secrets or None,
            "env": {"PATH": CONTAINER_PATH, **c.env, **(env or {})},
            "limits": {
                "memory_mb": c.memory_mb,
                "file_size_mb": c.file_size_mb,
                # per-uid; only meaningful for a uid of our own (pids_limit bounds the rest)
                "processes": c.processes if os.geteuid() == 0 else None,
            },
        }
        ids = self.lease.ids
        with self._lock:
            if self._closed or self._container is None:
                raise SandboxError("the sandbox is closed; reset the episode")
            channel = self._container.channel
            sampler = GpuSampler(ids, self.options.gpu_sample_s) if ids else None
            try:
                if sampler:
                    sampler.__enter__()
                channel.send(request)
                a = channel.recv(timeout + REPLY_GRACE_S)
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                self._close_locked()
                raise SandboxError(
                    f"the sandbox container stopped answering ({e!r}); reset the episode"
                ) from None
            finally:
                if sampler:
                    sampler.__exit__(None, None, None)
        result = ExecResult.from_executor(
            a,
            gpus=len(ids),
            gpu_util_pct=sampler.mean_util if sampler else None,
            gpu_mem_mb=sampler.peak_mem_mb if sampler else None,
        )
        self.compute_s += result.compute_s
        return result

    def usage(self) -> dict:
        """What this sandbox has used so far (compute in GPU-seconds where it has GPUs)."""
        return {"compute_s": self.compute_s, "gpus": list(self.lease.ids)}

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        container, self._container = self._container, None
        if container is not None:
            container.remove()
        self.lease.release()

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        container = self._container
        if container is not None:
            container.channel.close()  # unblocks a command in flight on another thread
        with self._lock:
            self._close_locked()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


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
