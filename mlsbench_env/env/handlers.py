"""One handler per tool, over the episode's state: ``HANDLERS[name](ep, args)`` returns
(observation text, ok, info, terminated). A handler raises ``MLSBenchError`` or
``ActionError`` for a refused action; the env turns that into the observation."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from mlsbench_env.env import background, render
from mlsbench_env.env.state import EpisodeState
from mlsbench_env.errors import ActionError, MLSBenchError
from mlsbench_env.evaluation import (
    RUN_ENV,
    final_evaluation,
    grade_submission,
    medal_of,
    new_out_dir,
    run_setting,
    validate_submission,
)
from mlsbench_env.scoring import final_info, score_runs
from mlsbench_env.spec import Competition
from mlsbench_env.tools import (
    EditArgs,
    ShellArgs,
    SubmitArgs,
    TestArgs,
    UndoArgs,
    ValidateArgs,
    ViewArgs,
)
from mlsbench_env.workspace import transplant

SHELL_ENV = {k: v for k, v in RUN_ENV.items() if k.endswith("_NUM_THREADS")}
Outcome = tuple[str, bool, dict, bool]  # (observation text, ok, info, terminated)
NO_COMPUTE: Outcome = "No compute budget left; `submit` to end the episode.", False, {}, False


def view(ep: EpisodeState, a: ViewArgs) -> Outcome:
    return ep.workspace.view(a.path, a.start, a.end), True, {}, False


def edit(ep: EpisodeState, a: EditArgs) -> Outcome:
    ws = ep.workspace
    try:
        if a.action == "create":
            out = ws.create(a.path, a.text)
        elif a.action == "insert":
            if a.after is None:
                raise ActionError("insert needs `after` (the line to insert after; 0 = top)")
            out = ws.insert(a.path, a.after, a.text)
        else:
            if a.start is None or a.end is None:
                raise ActionError("replace needs `start` and `end` (inclusive line numbers)")
            out = ws.replace(a.path, a.start, a.end, a.text)
    except MLSBenchError as e:
        ep.event("edit_refused", str(e))
        raise
    return "Edit applied.\n" + out, True, {}, False


def undo(ep: EpisodeState, a: UndoArgs) -> Outcome:
    files = ep.workspace.undo(a.n)
    return f"Reverted {len(files)} edit(s): {', '.join(files)}", True, {}, False


def _restore_fixed(ep: EpisodeState, before) -> list[str]:
    """Fixed files a command changed are put back; each is a tamper event."""
    events = ep.workspace.check_integrity(before, ep.sandbox_uid())
    for e in events:
        ep.event("fixed_file_restored", e)
    return events


def shell(ep: EpisodeState, a: ShellArgs) -> Outcome:
    if ep.budget.compute_s <= 0:
        return NO_COMPUTE
    timeout = min(a.timeout or ep.command_timeout, ep.command_timeout)
    before = ep.workspace.editable_snapshot()
    with ep.slot():
        res = ep.sandbox.exec(
            a.command,
            timeout=timeout,
            cwd="workspace",
            # one BLAS thread, as in test and final runs: compute is charged as wall time
            env=SHELL_ENV,
            max_output_bytes=ep.config.obs_max_tokens * render.CHARS_PER_TOKEN * 4,
        )
    ep.budget.compute_s -= res.compute_s
    events = _restore_fixed(ep, before)
    out = render.truncate_tokens(res.output, ep.config.obs_max_tokens)
    head = f"exit code {res.returncode}" + (f"; {res.killed}" if res.killed else "")
    text = f"{head}\n{out}" if out else head
    if events:
        text += "\n[integrity] " + "\n[integrity] ".join(events)
    return text, res.ok, {"exit_code": res.returncode, "killed": res.killed}, False


def test(ep: EpisodeState, a: TestArgs | None = None) -> Outcome:
    if ep.budget.tests <= 0:
        ep.event("budget_overrun", "test called with no tests left")
        return "No tests left; `submit` to end the episode.", False, {}, False
    if ep.budget.compute_s <= 0:
        return NO_COMPUTE
    if a is not None and not getattr(a, "wait", True):
        return background.start(ep)
    ep.budget.tests -= 1
    ep.tests_started += 1
    n, ws = ep.tests_started, ep.workspace
    before = ws.editable_snapshot()
    # the agent's code as the final evaluation takes it (the pristine scaffold, its regions,
    # its created files), not the workspace: a file a command left there (a numpy.py beside
    # run.py) would run in the harness's place and forge the test's score
    copy = f"tests/test{n}-{uuid.uuid4().hex[:8]}"
    where = ep.episode_dir / copy
    ranges = transplant(ep.task, ws.region_texts(), ws.created_files(), where, with_hidden=False)
    runs = []
    seed = ep.task.spec.seeds.dev
    try:
        for setting in ep.task.visible_settings:
            out = new_out_dir(ep.episode_dir, f"test{n}-{setting.label}")
            with ep.slot():
                run = run_setting(ep.task, ep.sandbox, copy, setting, seed, out, ranges)
            ep.budget.compute_s -= run.compute_s
            ep.run_events(run)
            runs.append(run)
            if ep.progress:
                ep.progress(setting.label, seed, run)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    _restore_fixed(ep, before)
    text, ok, info = background.record_test(ep, n, runs, ws.region_texts(), ws.created_files())
    return text, ok, info, False


def final(ep: EpisodeState, regions, created) -> dict:
    """The pristine final evaluation of this code: every setting, the final seeds."""
    c = ep.config
    seeds = list(c.final_seeds or ep.task.spec.seeds.final)
    with ep.slot():
        result = final_evaluation(
            ep.task,
            regions,
            created,
            backend=c.sandbox,
            seeds=seeds,
            work_root=ep.episode_dir.parent,
            hidden_extra=ep.hidden_runs(),
            progress=ep.progress,
            gpus=c.gpus,
        )
    for run in result.runs:
        ep.run_events(run)
    vanilla = ep.tests[0]["score"] if ep.tests else None
    info = final_info(result, result.runs, ep.task, seeds=seeds, vanilla_score=vanilla)
    return info | {"isolation": ep.isolation, "agent_isolation": ep.agent_isolation}


def submit(ep: EpisodeState, a: SubmitArgs) -> Outcome:
    if ep.task.is_competition:
        return submit_competition(ep)
    ws = ep.workspace
    if a.test is not None:
        chosen = next((t for t in ep.tests if t["n"] == a.test), None)
        job = next((j for j in ep.jobs.values() if j.test == a.test), None)
        if chosen is None and job is not None and job.running:
            raise MLSBenchError(
                f"test {a.test} is still running (job {job.id}); wait for it first "
                f'({{"tool": "jobs", "args": {{"action": "wait", "id": {job.id}}}}})'
            )
        if chosen is None:
            raise ActionError(f"no test number {a.test}; tests run so far: {len(ep.tests)}")
        regions, created, what = chosen["regions"], chosen["created"], f"test {a.test}"
    else:
        regions, created, what = ws.region_texts(), ws.created_files(), "the current code"
    for rel in ws.fixed_unchanged():
        ep.event("fixed_region_changed", f"{rel}: fixed lines differ from the scaffold")
    cancelled = background.cancel_all(ep)
    info = final(ep, regions, created)
    if cancelled:
        info["cancelled_jobs"] = cancelled
    text = render.final_text(what, info, cancelled)
    return text, info.get("score") is not None, info, True


def _competition(ep: EpisodeState) -> Competition:
    comp = ep.task.spec.competition
    assert comp is not None, "only a competition has a submission"  # checked when loaded
    return comp


def validate(ep: EpisodeState, a: ValidateArgs) -> Outcome:
    comp = _competition(ep)
    rel, path = ep.workspace.resolve(a.path or comp.submission)
    ok, message = validate_submission(ep.task, path)
    return (f"{rel}: valid. {message}" if ok else message), ok, {}, False


def submit_competition(ep: EpisodeState) -> Outcome:
    comp = _competition(ep)
    _, path = ep.workspace.resolve(comp.submission)
    with tempfile.TemporaryDirectory(dir=ep.episode_dir) as work:
        runs = grade_submission(ep.task, path, Path(work))
    result = score_runs(ep.task, runs, ep.task.anchors())
    for run in runs:
        ep.run_events(run)
    info = final_info(result, runs, ep.task, seeds=[0], vanilla_score=None)
    info |= {"isolation": ep.isolation, "agent_isolation": ep.agent_isolation}
    info["medal"] = medal_of(ep.task, runs)
    text = render.graded_text(comp.submission, runs, result, info["medal"])
    return text, result.score is not None, info, True


def final_unsubmitted(ep: EpisodeState, current_code: bool = False) -> tuple[str, dict, float]:
    """(what was evaluated and its score, final info, reward) for an episode that ends
    without submit: the submission file, else the last test's code (``current_code``: the
    code as it is now), else the current code."""
    if ep.task.is_competition:
        text, info = "grading the submission file.", submit_competition(ep)[2]
    else:
        last = ep.tests[-1] if ep.tests and not current_code else None
        what = f"test {last['n']}" if last else "the current code"
        text = f"evaluating {what}."
        info = final(
            ep,
            last["regions"] if last else ep.workspace.region_texts(),
            last["created"] if last else ep.workspace.created_files(),
        )
    text += f"\nFinal score: {render.fmt_score(info.get('score'))}"
    return text, info, float(info.get("score") or 0.0) * ep.config.reward_scale


HANDLERS: dict[str, Callable[..., Outcome]] = {
    "view": view,
    "edit": edit,
    "undo": undo,
    "shell": shell,
    "test": test,
    "jobs": background.jobs_tool,
    "validate": validate,
    "submit": submit,
}
