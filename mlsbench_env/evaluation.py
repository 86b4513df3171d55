"""Running settings and grading them: `test` runs, the final evaluation, calibration runs.

A setting's command runs in the sandbox; its stdout/stderr is only a log. Metrics come from the
task's trusted grader (``tasks/<id>/grader.py``), called here, outside the sandbox, on the
artifacts the fixed harness wrote into a fresh directory (``MLSBENCH_OUT``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import secrets
import shutil
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlsbench_env import policy
from mlsbench_env.sandbox import Sandbox, SandboxConfig, make_sandbox
from mlsbench_env.scoring import (
    Score,
    combine_settings,
    mean_and_spread,
    medal,
    seed_mean,
    setting_score,
)
from mlsbench_env.spec import Setting, Task, task_copies
from mlsbench_env.workspace import transplant

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
_GRADING = threading.Lock()


def _grader(task: Task):
    path = (task.root / "grader.py").resolve()
    if path not in _GRADERS:
        spec = importlib.util.spec_from_file_location(f"mlsbench_grader_{task.id}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _GRADERS[path] = module
    return _GRADERS[path]


def grade(task: Task, label: str, seed: int, out_dir: Path) -> tuple[dict | None, str | None]:
    """Call the trusted grader; (metrics, None) or (None, why the setting failed)."""
    try:
        with _GRADING:
            metrics = _grader(task).grade(label, seed, Path(out_dir), task.root)
    except Exception as e:  # the grader's verdict on invalid artifacts, or its own fault
        msg = str(e) or type(e).__name__
        if not isinstance(e, ValueError | RuntimeError | FileNotFoundError | AssertionError):
            msg = f"{type(e).__name__}: {msg}\n{traceback.format_exc(limit=3)}"
        return None, f"grader rejected the run: {msg}"
    if not isinstance(metrics, dict):
        return None, f"grader returned {type(metrics).__name__}, expected a dict of metrics"
    out = {}
    for m in task.spec.metrics:
        v = metrics.get(m.name)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None, f"grader produced no value for metric {m.name!r} (got {v!r})"
        if not math.isfinite(v):
            return None, f"metric {m.name!r} is not finite ({v})"
        out[m.name] = v
    return out, None


def check_policy(task: Task, root: Path, ranges: dict[str, list[tuple[int, int]]]) -> list[str]:
    violations = []
    for file, spans in ranges.items():
        path = root / file
        if not file.endswith(".py") or not path.is_file():
            continue
        violations += policy.check_source(path.read_text(), spans, task.spec.policy, file)
    return violations


def run_setting(
    task: Task,
    sandbox: Sandbox,
    workdir: str,
    setting: Setting,
    seed: int,
    out_dir: Path,
    ranges: dict[str, list[tuple[int, int]]],
    timeout: float | None = None,
) -> SettingRun:
    """Check, run and grade one setting. ``workdir`` and ``out_dir`` are inside sandbox.root."""
    violations = check_policy(task, sandbox.config.root / workdir, ranges)
    if violations:
        return SettingRun(
            setting.label,
            seed,
            None,
            "editable code breaks the task policy:\n" + "\n".join(violations),
            policy_violations=tuple(violations),
        )
    out_rel = out_dir.relative_to(sandbox.config.root)
    env = {**RUN_ENV, "MLSBENCH_SEED": str(seed), "MLSBENCH_OUT": str(out_dir)}
    res = sandbox.exec(
        f"mkdir -p {out_rel} && cd {workdir} && {setting.command}",
        timeout=timeout or task.spec.budgets.setting_timeout_s,
        env=env,
    )
    tail = res.output[-LOG_TAIL_CHARS:]
    common = dict(
        log_tail=tail,
        wall_s=res.wall_s,
        compute_s=res.compute_s,
        cpu_s=res.cpu_s,
        max_rss_mb=res.max_rss_mb,
        gpu_util_pct=res.gpu_util_pct,
        gpu_mem_mb=res.gpu_mem_mb,
    )
    if res.killed:
        return SettingRun(setting.label, seed, None, f"run stopped: {res.killed}", **common)
    if res.returncode != 0:
        return SettingRun(
            setting.label, seed, None, f"command exited with status {res.returncode}", **common
        )
    metrics, error = grade(task, setting.label, seed, out_dir)
    return SettingRun(setting.label, seed, metrics, error, **common)


def sandbox_config(
    task: Task, root: Path, hidden_extra: tuple[Path, ...] = (), gpus: int = 0
) -> SandboxConfig:
    """What a sandbox for ``root`` may see: not the task definitions, not other episodes."""
    hidden = {
        *task_copies(),
        task.root.resolve().parent,
        root.parent.resolve(),
        *task.hidden_sources(),
        *[p.resolve() for p in hidden_extra],
    }
    lim = task.spec.limits
    return SandboxConfig(
        root=root,
        readable=(task.repo.resolve(),),
        hidden=tuple(sorted(hidden)),
        memory_mb=lim.memory_mb,
        processes=lim.processes,
        gpus=gpus,
        file_size_mb=lim.file_size_mb,
    )


def new_out_dir(root: Path, name: str) -> Path:
    # unpredictable, created just before the run: agent code cannot plant artifacts in advance
    return root / "out" / f"{name}-{secrets.token_hex(4)}"


@dataclass
class FinalResult:
    """All settings x all seeds; the score per seed, and its mean and spread."""

    runs: list[SettingRun]
    seed_scores: dict[int, Score]
    setting_scores: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    spread: float | None = None
    reason: str | None = None

    def record(self) -> dict:
        return {
            "score": self.score,
            "spread": self.spread,
            "reason": self.reason,
            "seed_scores": {s: sc.value for s, sc in self.seed_scores.items()},
            "setting_scores": self.setting_scores,
            "runs": [r.record() for r in self.runs],
        }


def score_runs(task: Task, runs: list[SettingRun], anchors: dict | None) -> FinalResult:
    """The final score and its spread over seeds (rules in ``mlsbench_env.scoring``)."""
    seeds = sorted({r.seed for r in runs})
    seed_scores = {}
    for seed in seeds:
        scores = {
            r.label: setting_score(task, r.label, r.metrics, r.error, anchors)
            for r in runs
            if r.seed == seed
        }
        seed_scores[seed] = combine_settings(scores)
    result = FinalResult(runs, seed_scores)
    setting_scores = {}
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        ok = [r.metrics for r in mine if r.metrics is not None and r.error is None]
        if not ok:
            setting_scores[label] = Score(0.0, next(r.error for r in mine))
            continue
        means = {m.name: seed_mean([o[m.name] for o in ok], m) for m in task.spec.metrics}
        sc = setting_score(task, label, means, None, anchors)
        if sc.value is not None and len(ok) < len(mine):  # failed seeds count as 0
            sc = Score(sc.value * len(ok) / len(mine), "some seeds failed", sc.parts)
        setting_scores[label] = sc
    total = combine_settings(setting_scores)
    if total.value is None:
        result.reason = total.reason
        return result
    result.score = total.value
    result.spread = mean_and_spread([s.points for s in seed_scores.values()])[1]
    result.setting_scores = {k: v.points for k, v in setting_scores.items()}
    return result


def final_evaluation(
    task: Task,
    regions: dict[tuple[str, int], str],
    created: dict[str, str],
    *,
    backend: str = "local",
    seeds: list[int] | None = None,
    settings: list[Setting] | None = None,
    work_root: Path | None = None,
    anchors: dict | None = None,
    hidden_extra: tuple[Path, ...] = (),
    progress: Callable[[str, int, SettingRun], None] | None = None,
    gpus: int = 0,
) -> FinalResult:
    """Run every setting x every seed on a pristine copy carrying only the editable regions."""
    seeds = list(task.spec.seeds.final) if seeds is None else seeds
    settings = list(task.spec.settings) if settings is None else settings
    base = Path(tempfile.mkdtemp(prefix="final-", dir=work_root))
    runs: list[SettingRun] = []
    sandbox = None
    try:
        with_hidden = any(s.hidden for s in settings)
        jobs = []
        for seed in seeds:
            for setting in settings:
                rel = f"eval-{seed}-{setting.label}"
                ranges = transplant(task, regions, created, base / rel, with_hidden=with_hidden)
                jobs.append((seed, setting, rel, ranges))
        sandbox = make_sandbox(backend, sandbox_config(task, base, hidden_extra, gpus))
        for seed, setting, rel, ranges in jobs:
            run = run_setting(task, sandbox, rel, setting, seed, new_out_dir(base, rel), ranges)
            runs.append(run)
            if progress:
                progress(setting.label, seed, run)
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(base, ignore_errors=True)
    return score_runs(task, runs, task.anchors() if anchors is None else anchors)


# ---------------------------------------------------------------------- competitions
# A competition grades a submission file against private labels, once per test split (its
# settings): the same grader contract and scoring as a research task, with no setting command.


def validate_submission(task: Task, submission: Path) -> tuple[bool, str]:
    """The grader's format check of a submission file (no score): (ok, message)."""
    comp = task.spec.competition
    if not submission.is_file():
        return False, (
            f"no submission file at {comp.submission}: write your predictions there, in the "
            f"format of {comp.sample_submission}"
        )
    size_mb = submission.stat().st_size / 2**20
    if size_mb > comp.max_submission_mb:
        return False, (
            f"{comp.submission} is {size_mb:.1f} MB; submissions are capped at "
            f"{comp.max_submission_mb:g} MB"
        )
    try:
        with _GRADING:
            return True, str(_grader(task).validate(submission, task.root))
    except Exception as e:  # the grader's verdict on the format
        return False, f"{comp.submission} is not a valid submission: {e or type(e).__name__}"


def grade_submission(task: Task, submission: Path, work: Path, seed: int = 0) -> list[SettingRun]:
    """Grade a submission file on every test split; a file the grader rejects fails them all."""
    ok, why = validate_submission(task, submission)
    if not ok:
        return [SettingRun(s.label, seed, None, why) for s in task.spec.settings]
    runs = []
    for setting in task.spec.settings:
        out = new_out_dir(work, f"grade-{setting.label}")
        out.mkdir(parents=True)
        shutil.copyfile(submission, out / Path(task.spec.competition.submission).name)
        metrics, error = grade(task, setting.label, seed, out)
        runs.append(SettingRun(setting.label, seed, metrics, error))
    return runs


def leaderboard_value(task: Task, runs: list[SettingRun]) -> float | None:
    """A submission's leaderboard entry: its first metric averaged over the test splits."""
    m = task.spec.metrics[0]
    values = [r.metrics[m.name] for r in runs if r.metrics and not r.error]
    return sum(values) / len(values) if values and len(values) == len(runs) else None


def medal_of(task: Task, runs: list[SettingRun]) -> str | None:
    """The medal a graded submission wins against the calibrated leaderboard (anchors.json)."""
    medals = (task.anchors() or {}).get("medals") or {}
    value = leaderboard_value(task, runs)
    if value is None or not medals:
        return None
    return medal(value, medals, task.spec.metrics[0].direction)


def pipeline_evaluation(
    task: Task,
    files: dict[str, str],
    *,
    backend: str = "local",
    seeds: list[int] | None = None,
    work_root: Path | None = None,
    anchors: dict | None = None,
    progress: Callable[[str, int, SettingRun], None] | None = None,
) -> FinalResult:
    """Run a competition pipeline (``files`` added to a fresh workspace, then
    ``competition.run``) once per seed in the sandbox and grade what it submits. No files: the
    sample submission is submitted (the `default` baseline)."""
    comp = task.spec.competition
    seeds = list(task.spec.seeds.final) if seeds is None else seeds
    base = Path(tempfile.mkdtemp(prefix="pipeline-", dir=work_root))
    runs: list[SettingRun] = []
    sandbox = None
    try:
        for seed in seeds:  # every copy exists before the sandbox takes ownership of the root
            dest = base / f"run-{seed}"
            shutil.copytree(task.repo, dest, ignore=shutil.ignore_patterns("__pycache__"))
            for name, text in files.items():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / name).write_text(text)
        sandbox = make_sandbox(backend, sandbox_config(task, base))
        for seed in seeds:
            rel = f"run-{seed}"
            command = comp.run if files else f"cp {comp.sample_submission} {comp.submission}"
            res = sandbox.exec(
                f"cd {rel} && {command}",
                timeout=task.spec.budgets.setting_timeout_s,
                env={**RUN_ENV, "MLSBENCH_SEED": str(seed)},
            )
            if res.killed or res.returncode != 0:
                why = f"run stopped: {res.killed}" if res.killed else f"exit {res.returncode}"
                seed_runs = [
                    SettingRun(
                        s.label,
                        seed,
                        None,
                        f"pipeline failed ({why})",
                        res.output[-LOG_TAIL_CHARS:],
                    )
                    for s in task.spec.settings
                ]
            else:
                seed_runs = grade_submission(task, base / rel / comp.submission, base, seed)
            timing = dict(wall_s=res.wall_s, compute_s=res.compute_s, cpu_s=res.cpu_s)
            for run in seed_runs:
                run = dataclasses.replace(run, **timing)
                runs.append(run)
                if progress:
                    progress(run.label, seed, run)
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(base, ignore_errors=True)
    return score_runs(task, runs, task.anchors() if anchors is None else anchors)
