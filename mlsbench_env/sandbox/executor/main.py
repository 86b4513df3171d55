"""The in-sandbox executor's entry point, ``main``, and its protocol with the host.

Started once per sandbox (inside the namespaces of the `local` backend, or a container), it
reads one JSON request per line on stdin and answers one JSON line on stdout. Each command is a
fresh ``bash -c`` process in its own session, with rlimits, run as the sandbox user; output is
captured and capped; on timeout (or when the command exits) the whole process group is killed,
and when the executor is PID 1 of its namespace, every other process in it too. Keeping one
executor alive avoids paying namespace/container set-up per command.

Start-up config: the first line of stdin (marshal, in hex; never argv, so that `ps` inside shows
no host layout): {"view": {...}|null, "run_as": [uid, gid]|null}. ``view`` (``visibility.py``) lists
what the sandbox's fresh root holds; the executor builds it, pivots into it and reports in its
ready line what of the host's interpreter is missing there. ``run_as`` keeps the executor root
and runs only the commands as that uid; without it the commands share the executor's uid and
the executor gives up every capability first. Either way the executor is not dumpable and sets
no_new_privs, so commands can neither read its /proc entries nor write its reply pipe.

A request may carry ``"secrets": {name: text}``: the command then inherits a memory file (not a
path; it never touches a disk or the workspace) holding their JSON, named by the descriptor
number in ``MLSBENCH_SECRETS_FD``. Nothing else gets it: not later commands, not the shell of
the episode; a harness reads it once at start and closes it (docs/writing-tasks.md).

Container mode (the `docker` backend) adds ``"attach": true``: after the ready line the executor
waits for one ``{"attach": {"bind": [[src, dst, read_only]...], "hide": [path...], "unmount":
[path...], "run_as": [uid, gid]}}`` line, builds the episode's mount view (a pooled container is
started before its episode exists), gives up CAP_SYS_ADMIN, answers ``{"attached": true}``, and
from then on runs every command as ``run_as`` while it stays root itself, so that commands cannot
reach its request channel (/proc/1/fd) or signal it. If the host goes away (stdin closes), even
in the middle of a command, the executor kills everything and exits.
"""

from __future__ import annotations

import marshal
import os
import sys

from .commands import REQUESTS, run
from .mounts import attach, build_root, missing_runtime
from .syscalls import become_spawner, harden, landlock_abi

# json loads after the ready line (importing it, and re with it, is most of the executor's
# start-up time): a reset waits for the ready line, not for it


def _hex(value) -> str:
    return marshal.dumps(value).hex()


def main() -> None:
    os.closerange(3, 1024)  # the script's descriptor, or anything else the host handed down
    # The config comes on the first line of stdin (marshal, in hex: no import needed to read
    # it), so that `ps` in the sandbox shows no host path; the docker backend passes only
    # {"attach": true} as an argument, and reads a JSON ready line.
    if len(sys.argv) > 1:
        import json

        config, handshake = json.loads(sys.argv[1]), lambda value: json.dumps(value)
    else:
        config, handshake = marshal.loads(bytes.fromhex(REQUESTS.next_line() or "")), _hex
        if not isinstance(config, dict):
            raise SystemExit("the executor's config must be a dict")
    run_as = None  # stay root; run the commands as this uid/gid
    if config.get("run_as"):
        run_as = (int(config["run_as"][0]), int(config["run_as"][1]))
    ready: dict = {"ready": True, "pid1": os.getpid() == 1}
    if config.get("view"):
        try:
            build_root(config["view"])
            ready["mounts"] = True
            ready["missing"] = missing_runtime(config["view"], run_as)
        except OSError as e:
            ready["mounts"] = False
            ready["mount_error"] = str(e)
        try:
            harden(keep_caps=run_as is not None)
            ready["hardened"] = True
        except OSError as e:
            ready["hardened"] = False
            ready["harden_error"] = str(e)
    ready["landlock"] = landlock_abi()
    # Children must not inherit the request channel.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    reply.write(handshake(ready) + "\n")
    import json

    if config.get("attach"):
        line = REQUESTS.next_line()
        if line is None:
            return
        try:
            run_as = attach(json.loads(line)["attach"]) or run_as
            reply.write(json.dumps({"attached": True}) + "\n")
        except Exception as e:  # the host gives up on this container
            reply.write(json.dumps({"attached": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
            return
    if run_as:
        become_spawner(run_as)
    while (line := REQUESTS.next_line()) is not None:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line), as_other_user=run_as is not None)
        except Exception as e:  # report, keep serving: one bad request must not end the sandbox
            answer = {"error": f"{type(e).__name__}: {e}"}
        reply.write(json.dumps(answer) + "\n")
