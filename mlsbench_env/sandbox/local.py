"""The `local` backend: commands run as subprocesses on this machine, no daemon needed.

Isolation, where the kernel allows it (util-linux ``unshare``): no network, its own PID space,
its own root holding only what ``visibility.py`` allows (the OS runtime and the interpreter
read-only, the workspace, a private /tmp and /dev/shm), and, when started as root, a distinct
unprivileged uid per sandbox so that the process limit counts only its own processes (without
root, commands share the executor's uid and it gives up every capability instead). Where
namespaces are unavailable it falls back to plain subprocesses with rlimits and says so once.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import random
import shutil
import subprocess
import sys
import threading
import warnings
from functools import cache
from pathlib import Path
from typing import IO, cast

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox import ExecResult, Sandbox, SandboxConfig
from mlsbench_env.sandbox.executor import program
from mlsbench_env.sandbox.visibility import local_view

SANDBOX_UIDS = (200_000, 265_000)
# the host's interpreter first (the sandbox checks it is reachable), then the OS's tools
SANDBOX_PATH = os.pathsep.join(
    [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
)


def rootless() -> bool:
    """Whether sandboxes run as a non-root user's do: in a user namespace, the commands under
    the user's own uid. ``MLSBENCH_LOCAL_ROOTLESS=1`` asks for it as root too (to check that
    path, or to keep every sandbox under one uid)."""
    return os.geteuid() != 0 or os.environ.get("MLSBENCH_LOCAL_ROOTLESS") == "1"


def namespace_prefix() -> tuple[str, ...] | None:
    """The unshare command that works here, or None (checked once per process and mode)."""
    return _namespace_prefix(rootless())


@cache
def _namespace_prefix(user_namespace: bool) -> tuple[str, ...] | None:
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    base = [unshare, "--net", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child"]
    if user_namespace:
        base[1:1] = ["--user", "--map-root-user"]
    try:
        ok = subprocess.run([*base, "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return (*base, "--") if ok else None


def chown_tree(root: Path, uid: int) -> None:
    """Give ``root`` and everything in it to ``uid`` (a sandbox's own uid), links not followed."""
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


class LocalSandbox(Sandbox):
    command_path = SANDBOX_PATH

    def __init__(self, config: SandboxConfig):
        self.config = config
        self._lock = threading.Lock()
        prefix = namespace_prefix()
        self.uid = None
        if prefix is None:
            warnings.warn(
                "mlsbench: user/PID/network/mount namespaces are not available here (util-linux "
                "`unshare` failed); the local sandbox runs commands as plain subprocesses with "
                "rlimits only. Use sandbox='docker' for isolation.",
                RuntimeWarning,
                stacklevel=2,
            )
            prefix = ()
        elif not rootless():
            self.uid = random.randint(*SANDBOX_UIDS)
            for path in (config.root, *config.writable):
                chown_tree(Path(path), self.uid)
        self.own_uid = self.uid is not None
        executor_config = {
            "run_as": [self.uid, self.uid] if self.uid is not None else None,
            "view": local_view(config) if prefix else None,
        }
        self.namespaced = bool(prefix)
        # the script by descriptor and a bare environment: /proc/1 inside shows no host layout
        script = os.memfd_create("mlsbench-executor")
        try:
            os.write(script, program().encode())
            self._proc = subprocess.Popen(
                [*prefix, sys.executable, "-I", "-S", f"/dev/fd/{script}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                pass_fds=(script,),
                env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"},
            )
        finally:
            os.close(script)
        self._stdin = cast(IO[str], self._proc.stdin)  # PIPE above: never None
        self._stdout = cast(IO[str], self._proc.stdout)
        self._stdin.write(marshal.dumps(executor_config).hex() + "\n")
        self._stdin.flush()
        self._ready: dict | None = None

    def _wait_ready(self) -> dict:
        if self._ready is None:
            line = self._stdout.readline()
            if not line:
                raise SandboxError("the sandbox executor did not start (see stderr of unshare)")
            self._ready = ready = marshal.loads(bytes.fromhex(line.strip()))
            problem = None
            if self.namespaced and not ready.get("mounts"):
                problem = (
                    "the local sandbox could not build its root (an allow-list of the OS, the "
                    f"interpreter and the workspace): {ready.get('mount_error')}"
                )
            elif self.namespaced and not ready.get("hardened"):
                problem = (
                    f"the local sandbox could not drop privileges: {ready.get('harden_error')}"
                )
            elif ready.get("missing"):
                problem = (
                    "the host's interpreter is not reachable inside the sandbox (missing there, "
                    f"or closed to the sandbox's user: {', '.join(ready['missing'])}); commands "
                    "would run with another Python. Make those folders readable by other users "
                    "(a virtual environment made with `mkdtemp` is private), or install the "
                    "environment in a folder of this host."
                )
            if problem:
                self.close()
                raise SandboxError(problem)
        return self._ready

    def isolation(self) -> dict[str, bool]:
        ready = self._wait_ready()
        return {
            "network": self.namespaced,
            "pid": bool(ready.get("pid1")),
            "mounts": bool(ready.get("mounts")),
            "user": self.uid is not None,
            "limits": True,
            "landlock": bool(ready.get("landlock")),
        }

    def _run(self, request: dict) -> ExecResult:
        with self._lock:
            self._wait_ready()
            if self._proc.poll() is not None:
                raise SandboxError("the sandbox executor has exited; reset the episode")
            self._stdin.write(json.dumps(request) + "\n")
            self._stdin.flush()
            line = self._stdout.readline()
        if not line:
            raise SandboxError("the sandbox executor died while running a command")
        return ExecResult.from_executor(json.loads(line))

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is None or proc.returncode is not None:
            return
        # Nothing in the sandbox needs a graceful stop: killing unshare kills the executor
        # (--kill-child), and with it, as PID 1, every process of the namespace.
        proc.kill()
        proc.wait()
        for f in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                f.close()

    def __del__(self):
        self.close()
