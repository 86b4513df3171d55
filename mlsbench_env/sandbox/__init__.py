"""Sandbox backends: one base class, one module per backend, chosen by name.

A sandbox runs commands for one workspace (an episode's, or a final evaluation's copy) and
keeps everything else out of their reach.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from mlsbench_env.errors import SandboxError, UnknownNameError


@dataclass(frozen=True)
class ExecResult:
    """What one command did. ``killed`` names why it was stopped (timeout, a limit), if it was."""

    returncode: int
    output: str
    wall_s: float
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    timed_out: bool = False
    killed: str | None = None
    dropped_bytes: int = 0
    gpus: int = 0
    """GPUs the command had (0 on CPU)."""
    gpu_util_pct: float | None = None
    """Mean utilization of those GPUs while it ran (sampled), where an NVIDIA GPU exists."""
    gpu_mem_mb: float | None = None
    """Peak memory used on those GPUs while it ran (sampled)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.killed

    @classmethod
    def from_executor(cls, answer: dict, **extra) -> ExecResult:
        """Decode one answer of the in-sandbox executor (``sandbox/executor/``)."""
        if "error" in answer:
            raise SandboxError(f"the sandbox could not run the command: {answer['error']}")
        same = ("output", "wall_s", "cpu_s", "max_rss_mb", "timed_out", "killed", "dropped_bytes")
        return cls(returncode=answer["rc"], **{k: answer[k] for k in same}, **extra)

    @property
    def compute_s(self) -> float:
        """What the command costs the compute budget: wall x GPUs, or wall x 1 on CPU."""
        return self.wall_s * max(self.gpus, 1)


@dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox may see and use."""

    root: Path
    """The directory commands run in; read-write."""
    writable: tuple[Path, ...] = ()
    """Further directories the commands may write (artifact folders)."""
    readable: tuple[Path, ...] = ()
    """Further directories the commands may read but not write."""
    read_only: tuple[Path, ...] = ()
    """Files under the root that the commands may read but not change, replace or remove (a
    final run's fixed files)."""
    hidden: tuple[Path, ...] = ()
    """Directories covered wherever they lie inside what the sandbox sees (copies of the task
    definitions in site-packages, a competition's source data). The rest of the host is not in
    the sandbox at all: ``mlsbench_env.sandbox.visibility`` lists what is."""
    memory_mb: int = 4096
    processes: int = 256
    file_size_mb: int = 512
    network: bool = False
    tmp_mb: int = 512
    """Size of the private /tmp (memory-backed)."""
    shm_mb: int = 64
    """Size of the private /dev/shm."""
    env: dict[str, str] = field(default_factory=dict)
    gpus: int = 0
    """GPUs to give the commands (backends that support it: docker); compute is wall x GPUs."""


class Sandbox(ABC):
    """A backend. ``exec`` owns the public signature and builds the in-sandbox executor's
    request (``sandbox/executor/``); each backend carries requests out in ``_run``."""

    config: SandboxConfig
    command_path: str
    """``PATH`` of the commands (before ``config.env`` and the call's ``env``)."""
    own_uid: bool
    """Whether commands run as a uid of this sandbox's own: a per-uid process limit only
    means something then (docker's pids_limit bounds a container in any case)."""

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
        """Run ``command`` with bash in ``cwd`` (relative to ``config.root``, default the root).
        ``secrets`` reach this command's process only, over the secrets channel (a memory
        file named by ``MLSBENCH_SECRETS_FD``).

        Never raises for the command's own faults: they are in the result."""
        c = self.config
        return self._run(
            {
                "cmd": command,
                "cwd": str(c.root / cwd if cwd else c.root),
                "timeout": timeout,
                "max_output": max_output_bytes,
                "secrets": secrets or None,
                "env": {"PATH": self.command_path, **c.env, **(env or {})},
                "limits": {
                    "memory_mb": c.memory_mb,
                    "file_size_mb": c.file_size_mb,
                    "processes": c.processes if self.own_uid else None,
                },
            }
        )

    @abstractmethod
    def _run(self, request: dict) -> ExecResult:
        """Send one request to the executor and decode its answer
        (``ExecResult.from_executor``); raises SandboxError when the executor is gone."""

    @abstractmethod
    def isolation(self) -> dict[str, bool]:
        """Which protections are in force (network, pid, mounts, user, limits, landlock: the
        kernel lets the task kit's children drop their file access)."""

    @abstractmethod
    def close(self) -> None:
        """Stop every process and release resources; safe to call twice."""


def isolation_level(isolation: dict[str, bool]) -> str:
    """One word for a run record: ``full`` (own namespaces and a uid of its own), ``rootless``
    (own namespaces, the user's uid without any capability), or ``none`` (plain processes)."""
    if not (isolation.get("mounts") and isolation.get("pid") and isolation.get("network")):
        return "none"
    return "full" if isolation.get("user") else "rootless"


def agent_code_isolation(isolation: dict[str, bool]) -> str:
    """One word for what the task kit's child gets around agent code: ``landlock`` (file
    access cut to what it may import and its scratch folder, no TCP, its signals and abstract
    sockets scoped), ``uid`` (no Landlock; commands run as root and the child becomes a uid of
    its own) or ``none`` (the sandbox alone)."""
    if isolation.get("landlock"):
        return "landlock"
    return "none" if isolation.get("user") else "uid"


BACKENDS = {
    "local": ("mlsbench_env.sandbox.local:LocalSandbox", ""),
    "docker": (
        "mlsbench_env.sandbox.docker.backend:DockerSandbox",
        "pip install 'mlsbench-env[docker]'",
    ),
}


def make_sandbox(name: str, config: SandboxConfig) -> Sandbox:
    if name not in BACKENDS:
        raise UnknownNameError("sandbox backend", name, list(BACKENDS))
    target, extra = BACKENDS[name]
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SandboxError(
            f"the {name!r} sandbox backend is not available ({e}); install it with: {extra}"
        ) from e
    return getattr(module, cls_name)(config)
