"""One handler per tool, over the episode's state: ``HANDLERS[name](ep, args)`` returns
(observation text, ok, info, terminated). A handler raises ``MLSBenchError`` or
``ActionError`` for a refused action; the env turns that into the observation."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlsbench_env.env import background, render
from mlsbench_env.env.protocol import iterated
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
    ReplaceArgs,
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


def replace(ep: EpisodeState, a: ReplaceArgs) -> Outcome:
    """The string-replace edit (MLS-Bench v3): the exactly-once match becomes a line edit of
    the lines it spans, so the edit tool's checks (editable ranges, fixed files) apply."""
    ws = ep.workspace
    rel, _ = ws.resolve(a.path)
    text = ws.read(rel)
    count = text.count(a.old)
    if count != 1:
        where = "does not occur" if count == 0 else f"occurs {count} times"
        raise ActionError(
            f"`old` {where} in {rel}; it must match exactly once (copy it with its whitespace, "
            "and include more surrounding lines to make it unique)"
        )
    i = text.index(a.old)
    j = i + len(a.old)
    start, end = text.count("\n", 0, i) + 1, text.count("\n", 0, j - 1) + 1
    lines = text.splitlines(keepends=True)
    head, tail = sum(map(len, lines[: start - 1])), sum(map(len, lines[:end]))
    try:
        out = ws.replace(rel, start, end, text[head:i] + a.new + text[j:tail])
    except MLSBenchError as e:
        ep.event("edit_refused", str(e))
        raise
    return "Edit applied.\n" + out, True, {}, False


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
    if ep.protocol.select_tests:
        return selected_test(ep)
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
    ep.marks += "T"
    return text, ok, info, False


def selected_test(ep: EpisodeState) -> Outcome:
    """A test under an MLS-Bench protocol: every setting (each run isolated and pristine, as
    in a final evaluation; hidden ones recorded, not shown), the protocol's seeds. The full
    result is kept for `submit(n)`; the last test allowed is submitted at once."""
    ep.budget.tests -= 1
    ep.tests_started += 1
    n, ws, c, task = ep.tests_started, ep.workspace, ep.config, ep.task
    seeds = ep.protocol.test_seeds(n, list(c.final_seeds or task.spec.seeds.final))
    visible = {s.label for s in task.visible_settings}

    def progress(label, seed, run):  # the caller's progress hears of visible settings only
        if ep.progress and label in visible:
            ep.progress(label, seed, run)

    regions, created = ws.region_texts(), ws.created_files()
    result = _evaluate(ep, regions, created, seeds, progress)
    ep.budget.compute_s -= sum(r.compute_s for r in result.runs)
    shown = [r for r in result.runs if r.label in visible]
    vis = score_runs(task, shown, task.anchors())
    full = final_info(result, result.runs, task, seeds=seeds, vanilla_score=None)
    full |= {"isolation": ep.isolation, "agent_isolation": ep.agent_isolation, "test": n}
    ep.tests.append(
        {"n": n, "score": vis.score, "regions": regions, "created": created, "final": full}
    )
    ep.marks += "T"
    if c.dense_reward and vis.score is not None:
        ep.bonus += c.dense_reward * max(0.0, vis.score - ep.best_visible)
        ep.best_visible = max(ep.best_visible, vis.score)
    shown_info = final_info(vis, shown, task, seeds=seeds, vanilla_score=None)
    info = {k: shown_info[k] for k in ("metrics", "errors", "setting_scores", "score", "seeds")}
    info["metrics"] = {k: v for k, v in info["metrics"].items() if k in visible}
    info["test"], info["runs"] = n, background.run_rows(shown)
    lines = [f"Test {n} (visible settings, seeds {seeds}; means over seeds):"]
    for label in sorted(visible, key=[s.label for s in task.visible_settings].index):
        err = info["errors"].get(label)
        score = 0.0 if err else vis.setting_scores.get(label)
        lines.append(render.setting_line(label, info["metrics"].get(label, {}), err, score))
    lines.append(f"Score over visible settings: {render.fmt_score(vis.score)}")
    ok = all(r.error is None for r in shown)
    if ep.budget.tests > 0:
        return "\n".join(lines), ok, info, False
    text, final = select(ep, n)
    lines += ["", f"No tests left: test {n} is submitted automatically.", text]
    return "\n".join(lines), final.get("score") is not None, final, True


def select(ep: EpisodeState, n: int | None) -> tuple[str, dict]:
    """Test ``n``'s recorded result (None: the last test's) as the final result, every
    setting shown; nothing is re-run."""
    if not ep.tests:
        raise MLSBenchError("no test has run yet: `test` first (submit selects a test's result)")
    chosen = ep.tests[-1] if n is None else next((t for t in ep.tests if t["n"] == n), None)
    if chosen is None:
        raise ActionError(f"no test number {n}; tests run so far: {len(ep.tests)}")
    info = dict(chosen["final"], vanilla_score=ep.tests[0]["score"], selected_test=chosen["n"])
    what = f"test {chosen['n']} (its recorded result; nothing was re-run)"
    return render.final_text(what, info, []), info


def _evaluate(ep: EpisodeState, regions, created, seeds: list[int], progress):
    """The pristine evaluation of this code on ``seeds`` (a test's or the final one), in an
    experiment slot; each run's policy violations go into the tamper report."""
    c = ep.config
    with ep.slot():
        result = final_evaluation(
            ep.task,
            regions,
            created,
            backend=c.sandbox,
            seeds=seeds,
            work_root=ep.episode_dir.parent,
            hidden_extra=ep.hidden_runs(),
            progress=progress,
            gpus=c.gpus,
        )
    for run in result.runs:
        ep.run_events(run)
    return result


def final(ep: EpisodeState, regions, created) -> dict:
    """The pristine final evaluation of this code: every setting, the final seeds."""
    seeds = list(ep.config.final_seeds or ep.task.spec.seeds.final)
    result = _evaluate(ep, regions, created, seeds, ep.progress)
    vanilla = ep.tests[0]["score"] if ep.tests else None
    info = final_info(result, result.runs, ep.task, seeds=seeds, vanilla_score=vanilla)
    return info | {"isolation": ep.isolation, "agent_isolation": ep.agent_isolation}


def submit(ep: EpisodeState, a: SubmitArgs) -> Outcome:
    if ep.task.is_competition:
        return submit_competition(ep)
    if ep.protocol.select_tests:
        if ep.protocol.require_iteration and not iterated(ep.marks):
            raise MLSBenchError(
                f"submit is refused under protocol {ep.protocol.name!r} until you have iterated "
                "once: run `test`, edit the code, then run `test` again "
                f"(tests so far: {len(ep.tests)})"
            )
        text, info = select(ep, a.test)
        return text, info.get("score") is not None, info, True
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
    elif ep.protocol.select_tests and ep.tests:  # the protocol's auto-submit of the last test
        text, info = select(ep, None)
        text = f"selecting test {info['selected_test']}.\n" + text
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


EDITS = ("edit", "undo", "replace")


def spend_step(ep: EpisodeState, name: str | None) -> str | None:
    """Charge an action (``name``: its tool, None if malformed) to the budgets the protocol
    counts it in; the refusal to show when it may not run (no editing steps left)."""
    p, b = ep.protocol, ep.budget
    if b.actions is not None:
        b.actions -= 1
    if not p.counts(name):
        return None
    if p.counted_tools is not None and b.steps <= 0:
        return f"No editing steps left ({', '.join(p.counted_tools)} count): `test` or `submit`."
    b.steps -= 1
    return None


def exhausted(ep: EpisodeState) -> str | None:
    """The budget that ran out (the episode is truncated), or None."""
    b = ep.budget
    if b.steps <= 0 and ep.protocol.counted_tools is None:
        return "max_steps"
    if b.actions is not None and b.actions <= 0:
        return "max_actions"
    if b.compute_s <= 0:
        return "compute_s"
    if ep.deadline is not None and time.monotonic() > ep.deadline:
        return "wall_s"
    return None


HANDLERS: dict[str, Callable[..., Outcome]] = {
    "view": view,
    "edit": edit,
    "undo": undo,
    "replace": replace,
    "shell": shell,
    "test": test,
    "jobs": background.jobs_tool,
    "validate": validate,
    "submit": submit,
}
