"""The task's budget check (``task.yaml`` ``budget_check``): a trusted measurement of the agent's
code (a parameter count, ...) run before each setting run of a `test` and of the final
evaluation; a run it refuses does not start (``refusal``).

The verdict has the trust of a metric: the check runs the task's fixed harness on the same
pristine copy the run would use (the scaffold plus the agent's editable regions), the agent's
code runs only in the task kit's least-privileged child, and the harness writes
``budget_check.json`` into a fresh, unpredictable folder after every child has exited. Nothing
the agent's code prints, returns or exits with counts: only that file, read here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mlsbench_env.sandbox import Sandbox
from mlsbench_env.spec import Setting, Task
from mlsbench_env.workspace import hostfs

if TYPE_CHECKING:
    from mlsbench_env.evaluation.run import SettingRun

CHECK_ENV = "MLSBENCH_BUDGET_CHECK"
SETTING_ENV = "MLSBENCH_SETTING"
VERDICT = "budget_check.json"
MESSAGE_CHARS = 2000


def refusal(
    task: Task,
    sandbox: Sandbox,
    workdir: str,
    setting: Setting,
    seed: int,
    secrets: dict[str, str] | None = None,
) -> SettingRun | None:
    """None when the task has no check or the check passes; else the refused run (no metrics,
    the check's message as its error). A refused run is charged the check's compute, as any
    failed run: the agent learns something from it (the message), so it is not free."""
    # run.py imports this module; its helpers are imported here to keep the import one-way
    from mlsbench_env.evaluation.run import RUN_ENV, SettingRun, artifacts_problem, new_out_dir

    check = task.spec.budget_check
    if check is None:
        return None
    root = sandbox.config.root
    out = new_out_dir(root, f"budget-{setting.label}")
    env = {
        **RUN_ENV,
        "MLSBENCH_SEED": str(seed),
        "MLSBENCH_OUT": str(out),
        CHECK_ENV: "1",
        SETTING_ENV: setting.label,
    }
    command = check.command.strip() or setting.command
    res = sandbox.exec(
        f"mkdir -p {out.relative_to(root)} && cd {workdir} && {command}",
        timeout=check.timeout_s,
        env=env,
        secrets=secrets,
    )
    try:
        verdict = _verdict(root, out, artifacts_problem)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if verdict is not None and verdict[0] and res.ok:
        return None
    message = verdict[1] if verdict is not None and not verdict[0] else None
    if message is None:  # no verdict, or a pass from a check that then failed
        why = f"status {res.returncode}" if not res.killed else res.killed
        message = f"the check gave no verdict ({why}); its log ends:\n{res.output[-1500:]}"
    return SettingRun(
        setting.label,
        seed,
        None,
        f"refused by the task's budget check ({check.rule}): {message}",
        log_tail=res.output[-3000:],
        wall_s=res.wall_s,
        compute_s=res.compute_s,
        cpu_s=res.cpu_s,
        max_rss_mb=res.max_rss_mb,
    )


def _verdict(root: Path, out: Path, artifacts_problem) -> tuple[bool, str | None] | None:
    """(ok, message) from the harness's verdict file, or None where there is no valid one."""
    if artifacts_problem(root, out):
        return None
    try:
        record = json.loads(hostfs.read_bytes(out, VERDICT) or b"")
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("ok"), bool):
        return None
    message = record.get("message")
    message = str(message) if message else "over the budget"
    if len(message) > MESSAGE_CHARS:  # a child's traceback: its end says what failed
        message = "[...] " + message[-MESSAGE_CHARS:]
    return record["ok"], message
