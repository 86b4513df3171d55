"""The `docker` backend: one container per sandbox, commands through a trusted executor inside.

A sandbox takes a started container of its shape from the pool (``pool.py``), or starts one
cold (GPUs, or a root with no usable parent), and sends it its episode: the root to bind into
place, the paths to cover, the uid to run commands as (``attach`` in the executor). Each
command is one request to the executor and one answer; while it runs, the GPUs it holds are
sampled. Closing the sandbox removes the container and returns its GPUs.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import replace
from pathlib import Path

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox import ExecResult, Sandbox, SandboxConfig
from mlsbench_env.sandbox.docker.container import (
    CONTAINER_PATH,
    START_TIMEOUT_S,
    Container,
    create,
)
from mlsbench_env.sandbox.docker.options import DockerOptions
from mlsbench_env.sandbox.docker.pool import pool
from mlsbench_env.sandbox.docker.shape import STAGE, pooled_shape, shape_of
from mlsbench_env.sandbox.gpus import GpuAllocator, GpuLease, GpuSampler, announce
from mlsbench_env.sandbox.local import SANDBOX_UIDS, chown_tree

REPLY_GRACE_S = 30.0  # beyond a command's own timeout, before the executor counts as hung
# commands, not the executor, are what the kernel's OOM killer should pick inside the container
OOM_PREFIX = "{ echo 1000 > /proc/self/oom_score_adj; } 2>/dev/null; "


class DockerSandbox(Sandbox):
    command_path = CONTAINER_PATH

    def __init__(self, config: SandboxConfig, options: DockerOptions | None = None):
        self.config = config
        self.options = options or DockerOptions.from_env()
        self._lock = threading.Lock()
        self._closed = False
        self._container: Container | None = None
        self.lease: GpuLease = GpuAllocator().acquire(config.gpus)
        self.compute_s = 0.0
        self.pooled = False
        announce()
        root = config.root.resolve()
        self.own_uid = os.geteuid() == 0
        if self.own_uid:  # a private uid: its process limit counts only this sandbox
            self.uid = self.gid = random.randint(*SANDBOX_UIDS)
            for path in (root, *config.writable):
                chown_tree(Path(path), self.uid)
        else:  # the engine maps no users: files written inside must stay ours
            self.uid, self.gid = os.getuid(), os.getgid()
        try:
            self._container = self._start(root)
        except BaseException:
            self.lease.release()
            raise

    def _start(self, root: Path) -> Container:
        shape = shape_of(self.config, self.options, tuple(self.lease.ids))
        pool_shape = pooled_shape(shape, root, self.options)
        attach: dict = {"run_as": [self.uid, self.gid]}
        container = pool(pool_shape, self.options.pool_size).take() if pool_shape else None
        if container is not None:
            self.pooled = True
            attach |= {
                "bind": [[f"{STAGE}/{root.name}", str(root), False]],
                "hide": list(shape.hidden_inside),
                "unmount": [STAGE],
            }
        else:
            labels = (("mlsbench.root", str(root)),)
            container = create(replace(shape, root=str(root), labels=labels))
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

    def _run(self, request: dict) -> ExecResult:
        request = {**request, "cmd": OOM_PREFIX + request["cmd"]}
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
                a = channel.recv(request["timeout"] + REPLY_GRACE_S)
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
