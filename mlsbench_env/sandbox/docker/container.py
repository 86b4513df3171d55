"""One started container and its channel: the executor runs as its PID 1 and speaks JSON lines
over the container's attached stdio (there is no network to reach it through)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from dataclasses import dataclass

from docker.errors import APIError, DockerException, NotFound

from mlsbench_env.errors import SandboxError
from mlsbench_env.sandbox.docker.engine import LABEL, client, owner
from mlsbench_env.sandbox.docker.shape import Shape, host_config_args
from mlsbench_env.sandbox.executor import program

CONTAINER_PATH = "/opt/mlsbench/venv/bin:/usr/local/bin:/usr/bin:/bin"
START_TIMEOUT_S = 60.0


class Channel:
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
class Container:
    id: str
    channel: Channel
    landlock: int = 0  # the Landlock ABI the executor found in the container

    def remove(self) -> None:
        self.channel.close()
        try:
            client().api.remove_container(self.id, force=True)
        except NotFound:
            pass  # already gone (auto_remove)
        except APIError:
            # being removed already (auto_remove after its executor exited): closing means it is
            # gone when we return, so wait for the engine to finish
            with contextlib.suppress(NotFound, APIError, OSError):
                client().api.wait(self.id, timeout=30, condition="removed")


def create(shape: Shape) -> Container:
    """Start a container of ``shape`` and wait for its executor's ready line."""
    api = client().api
    host_config = api.create_host_config(**host_config_args(shape))
    config = json.dumps({"attach": True})
    try:
        cid = api.create_container(
            shape.image,
            # the executor's source as an argument, not a bind of the host's file: nothing in
            # the container (its mounts, /proc/1/cmdline) names a folder of the host
            ["/usr/bin/python3", "-I", "-S", "-c", program(), config],
            stdin_open=True,  # with detach=False: StdinOnce, so our leaving closes its stdin
            detach=False,
            tty=False,
            host_config=host_config,
            labels={LABEL: "1", "mlsbench.owner": owner(), **dict(shape.labels)},
            working_dir="/",
            environment={"PATH": CONTAINER_PATH, "LANG": "C.UTF-8"},
        )["Id"]
    except APIError as e:
        raise SandboxError(f"docker could not create the sandbox container: {e}") from None
    container = None
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        container = Container(cid, Channel(sock))
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


def _remove_quietly(cid: str, container: Container | None) -> None:
    if container is not None:
        container.channel.close()
    try:
        client().api.remove_container(cid, force=True)
    except DockerException:
        pass
