"""Background tests: ``test`` with ``wait=false`` starts a ``TestJob``, the ``jobs`` tool
lists, waits for and cancels them, and the episode's thread bills and scores what finished
(``collect``). Also where a finished test, blocking or not, is scored and recorded."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from mlsbench_env.env import render
from mlsbench_env.env.state import EpisodeState
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import SettingRun, new_out_dir, run_setting
from mlsbench_env.sandbox import make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.scoring import score_runs
from mlsbench_env.tools import JobsArgs
from mlsbench_env.tools.jobs import TestJob
from mlsbench_env.workspace import transplant


def record_test(ep: EpisodeState, n: int, runs: list[SettingRun], regions, created):
    """Score a finished test: record it (and its dense reward), say what it did."""
    result = score_runs(ep.task, runs, ep.task.anchors())
    score = result.score
    ep.tests.append({"n": n, "score": score, "regions": regions, "created": created})
    ep.tests.sort(key=lambda t: t["n"])  # background tests can finish out of order
    if ep.config.dense_reward and score is not None:
        ep.bonus += ep.config.dense_reward * max(0.0, score - ep.best_visible)
        ep.best_visible = max(ep.best_visible, score)
    info = {
        "metrics": {r.label: r.metrics for r in runs},
        "errors": {r.label: r.error for r in runs if r.error},
        "setting_scores": result.setting_scores,
        "score": score,
        "test": n,
        "runs": run_rows(runs),
    }
    text = render.test_text(n, ep.task.spec.seeds.dev, runs, result)
    return text, all(r.error is None for r in runs), info


def run_rows(runs: list[SettingRun]) -> list[dict]:
    """Each run's setting, seed, metrics and wall seconds: the per-seed rows of a test's
    records (MLS-Bench's leaderboard has one row per seed and an elapsed column per setting)."""
    return [
        {"label": r.label, "seed": r.seed, "metrics": r.metrics, "wall_s": r.wall_s} for r in runs
    ]


def start(ep: EpisodeState):
    """``test`` with ``wait=false``: the code as it is now, tested in a job of its own."""
    running = [j for j in ep.jobs.values() if j.running]
    if len(running) >= ep.config.max_jobs:
        ids = ", ".join(str(j.id) for j in running)
        return (
            f"{len(running)} background test(s) already running (jobs {ids}; max_jobs="
            f"{ep.config.max_jobs}): wait for one or cancel one with `jobs` first.",
            False,
            {"jobs": [j.status() for j in ep.jobs.values()]},
            False,
        )
    ep.budget.tests -= 1
    ep.tests_started += 1
    n, ws, c, task = ep.tests_started, ep.workspace, ep.config, ep.task
    job_id = max(ep.jobs, default=0) + 1
    root = ep.episode_dir / "jobs" / f"job{job_id}-{uuid.uuid4().hex[:8]}"
    # the code as it is now, as the final evaluation takes it (later edits do not leak into
    # the running test, and no file a command left in the workspace runs in it)
    ranges = transplant(
        task, ws.region_texts(), ws.created_files(), root / "workspace", with_hidden=False
    )
    (root / "out").mkdir()
    # its fixed files are read-only to the job's commands (one setting cannot change them
    # for the next)
    fixed = [root / "workspace" / rel for rel in ws.pristine if rel not in ws.ranges]
    settings = {s.label: s for s in task.visible_settings}
    seed = task.spec.seeds.dev
    hidden = (*ep.hidden_runs(), ep.episode_dir.parent.resolve())
    job = TestJob(job_id, n, list(settings), ws.region_texts(), ws.created_files())

    def make(where: Path):
        config = sandbox_config(task, where, hidden, c.gpus, read_only=fixed)
        return make_sandbox(c.sandbox, config)

    def run_one(sandbox, label: str, where: Path) -> SettingRun:
        out = new_out_dir(where, f"test{n}-{label}")
        return run_setting(task, sandbox, "workspace", settings[label], seed, out, ranges)

    job.start(root, make, run_one, lambda: ep.budget.compute_s, ep.slots)
    ep.jobs[job_id] = job
    text = (
        f"Test {n} started in the background as job {job_id} on a copy of the current code "
        f"(settings: {', '.join(settings)}). Keep working; "
        f'{{"tool": "jobs", "args": {{"action": "wait", "id": {job_id}}}}} waits for it.'
    )
    return text, True, {"job": job_id, "test": n}, False


def collect(ep: EpisodeState) -> None:
    """Bill what background jobs used; score the ones that finished (episode thread only)."""
    for job in ep.jobs.values():
        used = job.used_s
        if used > job.billed_s:
            ep.budget.compute_s -= used - job.billed_s
            job.billed_s = used
        if job.running or job.result is not None:
            continue
        for run in job.runs:
            ep.run_events(run)
            if ep.progress:
                ep.progress(run.label, run.seed, run)
        if job.state == "done" and len(job.runs) == len(job.settings):
            text, _, info = record_test(ep, job.test, job.runs, job.regions, job.created)
            info["job"] = job.id
            job.result = {"text": f"Job {job.id} finished. {text}", "info": info}
        else:
            why = f": {job.error}" if job.error else ""
            job.result = {
                "text": f"Job {job.id} (test {job.test}) {job.state}{why}; no score.",
                "info": {"job": job.id, "test": job.test, "state": job.state},
            }


def _stop(jobs: list[TestJob]) -> None:
    for job in jobs:
        job.cancel()
    for job in jobs:
        job.wait(60)


def cancel_all(ep: EpisodeState) -> list[int]:
    running = [j for j in ep.jobs.values() if j.running]
    _stop(running)
    collect(ep)
    for job in running:
        job.shown = True  # the caller's observation says they were cancelled
    return [j.id for j in running]


def jobs_tool(ep: EpisodeState, a: JobsArgs):
    jobs = ep.jobs
    if a.id is not None and a.id not in jobs:
        known = ", ".join(str(i) for i in jobs) or "none yet"
        raise MLSBenchError(f"no job {a.id}; jobs so far: {known}")
    chosen = [jobs[a.id]] if a.id is not None else list(jobs.values())
    notes = []
    if a.action == "cancel":
        stopped = [j for j in chosen if j.running]
        _stop(stopped)
        ids = ", ".join(str(j.id) for j in stopped)
        notes.append(f"Cancelled job(s) {ids}." if stopped else "No running job to cancel.")
    elif a.action == "wait":
        t0 = time.monotonic()
        for job in chosen:
            left = None if a.timeout is None else max(0.0, a.timeout - time.monotonic() + t0)
            job.wait(left)
        still = [str(j.id) for j in chosen if j.running]
        if still:
            notes.append(f"Still running after {a.timeout:g} s: job(s) {', '.join(still)}.")
    collect(ep)
    lines = [*notes, "Jobs:" if jobs else "No background jobs (start one: test wait=false)."]
    lines += [j.line() for j in jobs.values()]
    show = [
        j
        for j in chosen
        if j.result is not None and (not j.shown or (a.id is not None and a.action != "cancel"))
    ]
    results = [j.result for j in show if j.result is not None]
    for job, result in zip(show, results, strict=True):
        lines += ["", result["text"]]
        job.shown = True
    info: dict[str, Any] = {"jobs": [j.status() for j in jobs.values()]}
    if results:
        info["tests"] = [r["info"] for r in results]
    return "\n".join(lines), True, info, False
