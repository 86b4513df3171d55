"""Competitions (``kind: competition``): a submission file graded against private labels, once
per test split (its settings), with the same grader contract and scoring as a research task and
no setting command; baseline pipelines run in the sandbox to produce their submissions.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from mlsbench_env.evaluation import mlebench
from mlsbench_env.evaluation.final import run_seeds
from mlsbench_env.evaluation.run import (
    GRADING,
    LOG_TAIL_CHARS,
    RUN_ENV,
    SettingRun,
    grade,
    load_grader,
    new_out_dir,
)
from mlsbench_env.sandbox import make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.scoring import FinalResult, medal, medal_thresholds
from mlsbench_env.spec import Task
from mlsbench_env.spec.mlebench import MlebenchTask
from mlsbench_env.spec.model import Competition
from mlsbench_env.workspace import hostfs


def competition_of(task: Task) -> Competition:
    """The task's `competition` section; a research task has none."""
    if task.spec.competition is None:
        raise ValueError(f"task {task.id} is a research task: it has no `competition` section")
    return task.spec.competition


def validate_submission(task: Task, submission: Path) -> tuple[bool, str]:
    """The grader's format check of a submission file (no score): (ok, message)."""
    problem = _file_problem(task, submission)
    if problem:
        return False, problem
    if isinstance(task, MlebenchTask):  # MLE-bench checks a format by grading it
        value, message = mlebench.grade_file(task, submission)
        return value is not None, message
    comp = competition_of(task)
    try:
        with GRADING:
            return True, str(load_grader(task).validate(submission, task.root))
    except Exception as e:  # the grader's verdict on the format
        return False, f"{comp.submission} is not a valid submission: {e or type(e).__name__}"


def _file_problem(task: Task, submission: Path) -> str | None:
    """Why ``submission`` is not a file the host may grade (a link, missing, too large)."""
    comp = competition_of(task)
    # the workspace is the agent's: the submission may be a link to a file of the host
    kind = hostfs.kind(submission.parent, submission.name)
    if kind in ("link", "special"):
        return f"{comp.submission} must be a regular file, not a {kind}"
    if kind != "file":
        return (
            f"no submission file at {comp.submission}: write your predictions there, in the "
            f"format of {comp.sample_submission}"
        )
    size_mb = submission.stat().st_size / 2**20
    if size_mb > comp.max_submission_mb:
        return (
            f"{comp.submission} is {size_mb:.1f} MB; submissions are capped at "
            f"{comp.max_submission_mb:g} MB"
        )
    return None


def grade_submission(task: Task, submission: Path, work: Path, seed: int = 0) -> list[SettingRun]:
    """Grade a submission file on every test split; a file the grader rejects fails them all."""
    if isinstance(task, MlebenchTask):  # one grading by MLE-bench's grader, no format pass
        return mlebench.grade_runs(task, submission, seed, _file_problem(task, submission))
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
        (out / Path(competition_of(task).submission).name).write_bytes(data)
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
    anchors = task.anchors() or {}
    medals = anchors.get("medals") or {}
    if not medals and anchors.get("leaderboard"):  # an MLE-bench competition's own board
        values = [e["value"] for e in anchors["leaderboard"]]
        medals = medal_thresholds(values, task.spec.metrics[0].direction)
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
    comp = competition_of(task)
    seeds = list(task.spec.seeds.final) if seeds is None else seeds

    def runs_of_seed(base: Path, seed: int) -> Iterator[tuple[Path, SettingRun]]:
        # each seed's pipeline in a sandbox of its own, over its own copy
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
        for run in seed_runs:
            timed = dataclasses.replace(
                run, wall_s=res.wall_s, compute_s=res.compute_s, cpu_s=res.cpu_s
            )
            yield run_dir, timed

    return run_seeds(
        task,
        seeds,
        runs_of_seed,
        prefix="pipeline-",
        work_root=work_root,
        anchors=anchors,
        progress=progress,
    )
