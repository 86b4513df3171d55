"""One setting run: the policy check of the editable code, the command in the sandbox, and the
trusted grader's metrics (``run_setting``, ``grade``, ``SettingRun``).

A setting's command runs in the sandbox; its stdout/stderr is only a log. Metrics come from the
task's trusted grader (``tasks/<id>/grader.py``), called here, outside the sandbox, on the
artifacts the fixed harness wrote into a fresh directory (``MLSBENCH_OUT``).
"""

from __future__ import annotations

import importlib.util
import math
import secrets
import threading
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from mlsbench_env.evaluation import budget_check, policy
from mlsbench_env.sandbox import Sandbox
from mlsbench_env.spec import Setting, Task
from mlsbench_env.workspace import hostfs

LOG_TAIL_CHARS = 3000
RUN_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True)
class SettingRun:
    """One setting run on one seed: metrics from the grader, or the reason it failed."""

    label: str
    seed: int
    metrics: dict[str, float] | None
    error: str | None
    log_tail: str = ""
    wall_s: float = 0.0
    compute_s: float = 0.0
    """What the run costs the compute budget: wall x GPUs (wall on CPU)."""
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    policy_violations: tuple[str, ...] = ()
    gpu_util_pct: float | None = None
    gpu_mem_mb: float | None = None

    def record(self) -> dict:
        return asdict(self)


_GRADERS: dict[Path, object] = {}
# Episodes of a pool grade from threads of one process; graders are plain modules that may
# register helper modules in sys.modules (as dataclasses require) or cache state, so one grades
# at a time rather than every task's grader having to be thread-safe.
GRADING = threading.Lock()


def load_grader(task: Task):
    """The task's trusted grader module, loaded once per process."""
    path = (task.root / "grader.py").resolve()
    if path not in _GRADERS:
        spec = importlib.util.spec_from_file_location(f"mlsbench_grader_{task.id}", path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"task {task.id}: no loadable grader at {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _GRADERS[path] = module
    return _GRADERS[path]


def grade(task: Task, label: str, seed: int, out_dir: Path) -> tuple[dict | None, str | None]:
    """Call the trusted grader; (metrics, None) or (None, why the setting failed)."""
    try:
        with GRADING:
            metrics = load_grader(task).grade(label, seed, Path(out_dir), task.root)
    except Exception as e:  # the grader's verdict on invalid artifacts, or its own fault
        msg = str(e) or type(e).__name__
        if not isinstance(e, ValueError | RuntimeError | FileNotFoundError | AssertionError):
            msg = f"{type(e).__name__}: {msg}\n{traceback.format_exc(limit=3)}"
        return None, f"grader rejected the run: {msg}"
    if not isinstance(metrics, dict):
        return None, f"grader returned {type(metrics).__name__}, expected a dict of metrics"
    out = {}
    for m in task.spec.metrics:
        raw = metrics.get(m.name)
        try:
            v = float(raw)  # type: ignore[arg-type]  # anything float() refuses is reported
        except (TypeError, ValueError):
            return None, f"grader produced no value for metric {m.name!r} (got {raw!r})"
        if not math.isfinite(v):
            return None, f"metric {m.name!r} is not finite ({v})"
        out[m.name] = v
    return out, None


def check_policy(task: Task, root: Path, ranges: dict[str, list[tuple[int, int]]]) -> list[str]:
    violations = []
    for file, spans in ranges.items():
        source = hostfs.read_text(root, file) if file.endswith(".py") else None
        if source is not None:
            violations += policy.check_source(source, spans, task.spec.policy, file)
    return violations


def artifacts_problem(root: Path, out_dir: Path) -> str | None:
    """Why the host must not read the artifacts in ``out_dir`` (under a sandbox's ``root``),
    or None: the folder must be a real one, with regular files only (a link there would make
    the grader read a file of the host)."""
    rel = out_dir.relative_to(root).as_posix()
    kind = hostfs.kind(root, rel)
    if kind != "dir":
        return f"the artifacts folder is {'a link' if kind == 'link' else 'missing'} after the run"
    odd = hostfs.not_regular(out_dir)
    if odd:
        return "artifacts must be regular files; found " + ", ".join(odd[:5])
    return None


def run_setting(
    task: Task,
    sandbox: Sandbox,
    workdir: str,
    setting: Setting,
    seed: int,
    out_dir: Path,
    ranges: dict[str, list[tuple[int, int]]],
    timeout: float | None = None,
    secrets: dict[str, str] | None = None,
) -> SettingRun:
    """Check, run and grade one setting. ``workdir`` and ``out_dir`` are inside sandbox.root;
    ``secrets`` reach the setting's command over the secrets channel."""
    violations = check_policy(task, sandbox.config.root / workdir, ranges)
    if violations:
        return SettingRun(
            setting.label,
            seed,
            None,
            "editable code breaks the task policy:\n" + "\n".join(violations),
            policy_violations=tuple(violations),
        )
    if refused := budget_check.refusal(task, sandbox, workdir, setting, seed, secrets):
        return refused
    out_rel = out_dir.relative_to(sandbox.config.root)
    env = {**RUN_ENV, "MLSBENCH_SEED": str(seed), "MLSBENCH_OUT": str(out_dir)}
    res = sandbox.exec(
        f"mkdir -p {out_rel} && cd {workdir} && {setting.command}",
        timeout=timeout or task.spec.budgets.setting_timeout_s,
        env=env,
        secrets=secrets,
    )
    tail = res.output[-LOG_TAIL_CHARS:]

    def outcome(metrics: dict | None, error: str | None) -> SettingRun:
        return SettingRun(
            setting.label,
            seed,
            metrics,
            error,
            log_tail=tail,
            wall_s=res.wall_s,
            compute_s=res.compute_s,
            cpu_s=res.cpu_s,
            max_rss_mb=res.max_rss_mb,
            gpu_util_pct=res.gpu_util_pct,
            gpu_mem_mb=res.gpu_mem_mb,
        )

    if res.killed:
        return outcome(None, f"run stopped: {res.killed}")
    if res.returncode != 0:
        return outcome(None, f"command exited with status {res.returncode}")
    problem = artifacts_problem(sandbox.config.root, out_dir)
    if problem:
        return outcome(None, f"run rejected: {problem}")
    return outcome(*grade(task, setting.label, seed, out_dir))


def new_out_dir(root: Path, name: str) -> Path:
    # unpredictable, created just before the run: agent code cannot plant artifacts in advance
    return root / "out" / f"{name}-{secrets.token_hex(4)}"
