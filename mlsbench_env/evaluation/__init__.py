"""Running settings and grading them: `test` runs, the final evaluation, calibration runs.

A setting's command runs in the sandbox; its stdout/stderr is only a log. Metrics come from the
task's trusted grader (``tasks/<id>/grader.py``), called here, outside the sandbox, on the
artifacts the fixed harness wrote into a fresh directory (``MLSBENCH_OUT``).
"""

from __future__ import annotations

import dataclasses
import hashlib
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

from mlsbench_env.evaluation import policy
from mlsbench_env.sandbox import Sandbox, make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.scoring import (
    Score,
    combine_settings,
    mean_and_spread,
    medal,
    seed_mean,
    setting_score,
)
from mlsbench_env.spec import Setting, Task
from mlsbench_env.workspace import hostfs, transplant

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
    out_rel = out_dir.relative_to(sandbox.config.root)
    env = {**RUN_ENV, "MLSBENCH_SEED": str(seed), "MLSBENCH_OUT": str(out_dir)}
    res = sandbox.exec(
        f"mkdir -p {out_rel} && cd {workdir} && {setting.command}",
        timeout=timeout or task.spec.budgets.setting_timeout_s,
        env=env,
        secrets=secrets,
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
    problem = artifacts_problem(sandbox.config.root, out_dir)
    if problem:
        return SettingRun(setting.label, seed, None, f"run rejected: {problem}", **common)
    metrics, error = grade(task, setting.label, seed, out_dir)
    return SettingRun(setting.label, seed, metrics, error, **common)


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


def fixed_digests(workspace: Path, ranges: dict[str, list[tuple[int, int]]]) -> dict[str, str]:
    """sha256 of every fixed file of a run's copy (every file but the editable and created)."""
    return {
        rel: hashlib.sha256(hostfs.read_bytes(workspace, rel) or b"").hexdigest()
        for rel, kind in hostfs.walk(workspace)
        if kind != "dir" and rel not in ranges
    }


def run_isolated(
    task: Task,
    run_dir: Path,
    setting: Setting,
    seed: int,
    ranges: dict[str, list[tuple[int, int]]],
    digests: dict[str, str],
    *,
    backend: str,
    hidden_extra: tuple[Path, ...] = (),
    gpus: int = 0,
    secrets: dict[str, str] | None = None,
) -> SettingRun:
    """One (setting, seed) run of a final evaluation, on its own: a sandbox that sees only this
    run's folder (``run_dir/workspace``, the copy, and ``run_dir/out``), whose fixed files are
    read-only to its commands and match ``digests`` (taken when the copy was made) right before
    it starts. No other run can see or write any of it."""
    workspace = run_dir / "workspace"
    changed = [rel for rel, d in fixed_digests(workspace, ranges).items() if digests.get(rel) != d]
    changed += [rel for rel in digests if hostfs.kind(workspace, rel) is None]
    if changed:
        return SettingRun(
            setting.label, seed, None, "fixed files changed before the run: " + ", ".join(changed)
        )
    read_only = [workspace / rel for rel in digests]
    config = sandbox_config(task, run_dir, hidden_extra, gpus, read_only=read_only)
    sandbox = make_sandbox(backend, config)
    try:
        out = new_out_dir(run_dir, "run")
        return run_setting(task, sandbox, "workspace", setting, seed, out, ranges, secrets=secrets)
    finally:
        sandbox.close()


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
    """Run every setting x every seed, each on its own pristine copy carrying only the editable
    regions (``run_isolated``)."""
    seeds = list(task.spec.seeds.final) if seeds is None else seeds
    settings = list(task.spec.settings) if settings is None else settings
    base = Path(tempfile.mkdtemp(prefix="final-", dir=work_root))
    runs: list[SettingRun] = []
    try:
        with_hidden = any(s.hidden for s in settings)
        secrets = task.secrets() if with_hidden else None
        for seed in seeds:
            for setting in settings:
                run_dir = base / f"eval-{seed}-{setting.label}"
                ws = run_dir / "workspace"
                ranges = transplant(task, regions, created, ws, with_hidden=with_hidden)
                run = run_isolated(
                    task,
                    run_dir,
                    setting,
                    seed,
                    ranges,
                    fixed_digests(ws, ranges),
                    backend=backend,
                    hidden_extra=hidden_extra,
                    gpus=gpus,
                    secrets=secrets,
                )
                shutil.rmtree(run_dir, ignore_errors=True)
                runs.append(run)
                if progress:
                    progress(setting.label, seed, run)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return score_runs(task, runs, task.anchors() if anchors is None else anchors)


# ---------------------------------------------------------------------- competitions
# A competition grades a submission file against private labels, once per test split (its
# settings): the same grader contract and scoring as a research task, with no setting command.


def validate_submission(task: Task, submission: Path) -> tuple[bool, str]:
    """The grader's format check of a submission file (no score): (ok, message)."""
    comp = task.spec.competition
    # the workspace is the agent's: the submission may be a link to a file of the host
    kind = hostfs.kind(submission.parent, submission.name)
    if kind in ("link", "special"):
        return False, f"{comp.submission} must be a regular file, not a {kind}"
    if kind != "file":
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
        data = hostfs.read_bytes(submission.parent, submission.name)
        if data is None:  # replaced since it was validated: nothing of it is read
            runs.append(SettingRun(setting.label, seed, None, "the submission file is gone"))
            continue
        (out / Path(task.spec.competition.submission).name).write_bytes(data)
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
    try:
        for seed in seeds:  # each seed's pipeline in a sandbox of its own, over its own copy
            run_dir = base / f"run-{seed}"
            dest = run_dir / "workspace"
            shutil.copytree(task.repo, dest, ignore=shutil.ignore_patterns("__pycache__"))
            for name, text in files.items():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / name).write_text(text)
            command = comp.run if files else f"cp {comp.sample_submission} {comp.submission}"
            sandbox = make_sandbox(backend, sandbox_config(task, run_dir))
            try:
                res = sandbox.exec(
                    f"cd workspace && {command}",
                    timeout=task.spec.budgets.setting_timeout_s,
                    env={**RUN_ENV, "MLSBENCH_SEED": str(seed)},
                )
            finally:
                sandbox.close()
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
            elif hostfs.kind(run_dir, "workspace") != "dir":
                seed_runs = [
                    SettingRun(s.label, seed, None, "the pipeline replaced its workspace folder")
                    for s in task.spec.settings
                ]
            else:
                seed_runs = grade_submission(task, dest / comp.submission, run_dir, seed)
            shutil.rmtree(run_dir / "workspace", ignore_errors=True)
            timing = dict(wall_s=res.wall_s, compute_s=res.compute_s, cpu_s=res.cpu_s)
            for run in seed_runs:
                run = dataclasses.replace(run, **timing)
                runs.append(run)
                if progress:
                    progress(run.label, seed, run)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return score_runs(task, runs, task.anchors() if anchors is None else anchors)
