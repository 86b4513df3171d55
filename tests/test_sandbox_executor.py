"""The in-sandbox executor shipped as one program: it runs under a bare interpreter
(``python -I -S``, nothing of mlsbench importable) and names no folder of the host."""

import json
import marshal
import subprocess
import sys

from mlsbench_env.sandbox.executor import HERE, program
from mlsbench_env.sandbox.visibility import project_checkout


def test_the_program_names_no_host_folder():
    text = program()
    assert str(HERE) not in text
    if project_checkout():
        assert str(project_checkout()) not in text


def test_the_program_runs_commands_under_a_bare_interpreter(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", program()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        proc.stdin.write(marshal.dumps({"view": None, "run_as": None}).hex() + "\n")
        ready = marshal.loads(bytes.fromhex(proc.stdout.readline().strip()))
        assert ready["ready"] and not ready["pid1"]
        requests = [
            {"cmd": "echo hi; exit 3", "cwd": str(tmp_path), "timeout": 5},
            {"cmd": "sleep 5", "cwd": str(tmp_path), "timeout": 0.3},
            {"cmd": "seq 1 10000", "cwd": str(tmp_path), "timeout": 5, "max_output": 100},
            {
                "cmd": "cat <&$MLSBENCH_SECRETS_FD",
                "cwd": str(tmp_path),
                "timeout": 5,
                "secrets": {"key": "value"},
            },
            {"no": "command"},
        ]
        answers = []
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
            answers.append(json.loads(proc.stdout.readline()))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    echo, sleep, seq, secret, bad = answers
    assert (echo["rc"], echo["output"], echo["killed"]) == (3, "hi\n", None)
    assert sleep["timed_out"] and sleep["killed"] == "timeout after 0.3 s"
    assert seq["dropped_bytes"] > 0 and "bytes of output omitted" in seq["output"]
    assert json.loads(secret["output"]) == {"key": "value"}
    assert bad == {"error": "KeyError: 'cwd'"}
    assert proc.returncode == 0  # the host went away: the executor exits
