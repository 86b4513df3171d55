"""Every text an agent reads: the task prompt (the first observation; nothing about hidden
settings), each tool's result, the budget footer, and the caps on observation size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsbench_env.scoring import seed_mean
from mlsbench_env.spec import Task
from mlsbench_env.tools import usage
from mlsbench_env.workspace import Workspace

if TYPE_CHECKING:
    from mlsbench_env.env.state import EpisodeState

MAX_OBS_CHARS = 400_000
CHARS_PER_TOKEN = 4  # observation budgets are estimated at 4 characters per token


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _metric_desc(task: Task) -> str:
    return ", ".join(
        f"{m.name} ({m.direction} is better{', log scale' if m.log else ''}"
        f"{f', best possible {m.bound:g}' if m.bound is not None else ''})"
        for m in task.spec.metrics
    )


def baseline_table(task: Task) -> str:
    anchors = task.anchors()
    if not task.spec.show_baseline_results or not anchors:
        return ""
    visible = [s.label for s in task.visible_settings]
    rows = ["| baseline | " + " | ".join(visible) + " |", "|---" * (len(visible) + 1) + "|"]
    titles = {b.name: b.title for b in task.spec.baselines} | {"default": "scaffold (default)"}
    for name, per_setting in anchors.get("results", {}).items():
        cells = []
        for label in visible:
            vals = per_setting.get(label, {})
            cells.append(
                ", ".join(
                    f"{m.name}={_fmt(seed_mean(vals[m.name], m))}"
                    for m in task.spec.metrics
                    if vals.get(m.name)
                )
            )
        rows.append(f"| {titles.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render_prompt(
    task: Task,
    ws: Workspace,
    tools: list[str],
    budget_line: str,
    show_baseline_code: bool | None = None,
) -> str:
    """The task prompt; ``show_baseline_code`` None takes the task's choice."""
    show_code = task.spec.show_baseline_code if show_baseline_code is None else show_baseline_code
    if task.is_competition:
        return render_competition_prompt(task, ws, tools, budget_line, show_code)
    s = task.spec
    parts = [f"# Research task: {s.title}", "", "## Question", s.question.strip()]
    if s.background.strip():
        parts += ["", "## Background", s.background.strip()]
    if s.interface.strip():
        parts += ["", "## Interface your code must keep", s.interface.strip()]
    parts += [
        "",
        "## Editable code",
        "You may change only the lines marked '*' (the editable ranges); everything else "
        "is fixed and verified. The final evaluation carries only your editable regions "
        "into a pristine copy of the scaffold.",
    ]
    if s.creatable:
        parts.append("You may also create new files matching: " + ", ".join(s.creatable))
    for file in ws.ranges:
        parts += ["", "```", ws.view(file), "```"]
    parts += ["", "## Files in the workspace", ws.view(".").split("\n", 1)[1]]
    parts += [
        "",
        "## How your code is evaluated",
        "`test` runs these settings on the dev seed (the final evaluation also runs "
        "further settings you do not see, on several seeds, so prefer methods that "
        "transfer):",
    ]
    for st in task.visible_settings:
        parts.append(f"- {st.label}: `{st.command}`")
    if s.budget_check is not None:
        parts += [
            "",
            f"Budget check: before every setting run of a `test` and of the final evaluation, "
            f"the harness checks that {s.budget_check.rule}; code that breaks it is refused "
            "(the run does not start, the test still counts).",
        ]
    parts += [
        "",
        f"Metrics: {_metric_desc(task)}.",
        "Scores are normalized per setting: the unchanged scaffold scores 0, the "
        "strongest known baseline 50, the metric's bound 100; the task score is the "
        "geometric mean over settings.",
    ]
    parts += _known_baselines(task, "## Known baselines")
    table = baseline_table(task)
    if table:
        parts += ["", "Their results on the visible settings (mean over the final seeds):", table]
    if show_code:
        parts += baseline_code(task)
    return _with_tools_and_budgets(parts, tools, budget_line)


def baseline_code(task: Task) -> list[str]:
    """Each listed baseline's text of every editable region, as read-only reference: a
    research task's baselines are replacements of exactly these regions (``baselines/<name>/``
    holds one file per region, nothing else reaches the prompt)."""
    parts = [
        "",
        "## Baseline code (read-only reference)",
        "Each known baseline is a replacement of the editable region(s) above. Its code is shown "
        "here for reference only: it is not in your workspace, and copying it, or a cosmetic "
        "variant of it, reproduces that baseline's score.",
    ]
    several = len(task.regions) > 1
    for b in task.spec.baselines:
        parts += ["", f"### {b.title}"]
        for region in task.regions:
            text = task.baseline_regions(b.name)[(region.file, region.index)]
            where = f"{region.file}, region {region.index}" if several else region.file
            parts += [f"Replaces the editable lines of {where}:", "```", text.rstrip("\n"), "```"]
    return parts


def render_competition_prompt(
    task: Task, ws: Workspace, tools: list[str], budget_line: str, show_code: bool = False
) -> str:
    s, comp = task.spec, task.spec.competition
    assert comp is not None, "a competition task has its competition block"  # checked when loaded
    description = (task.repo / "description.md").read_text().strip()
    splits = ", ".join(st.label for st in s.settings)
    parts = [
        f"# Competition: {s.title}",
        "",
        s.question.strip(),
        "",
        "## Competition description (description.md)",
        description,
        "",
        "## Files in the workspace",
        ws.view(".").split("\n", 1)[1],
        "",
        "## Submission and grading",
        f"Build any pipeline you like in the workspace (every file is yours; create new ones "
        f"freely) and write your predictions to `{comp.submission}`, in the format of "
        f"`{comp.sample_submission}` (at most {comp.max_submission_mb:g} MB). `validate` checks "
        "its format without grading it. `submit` ends the episode: the file is graded against "
        f"private test labels, on each test split ({splits}).",
        f"Metrics: {_metric_desc(task)}.",
        "Scores are normalized per split: the sample submission scores 0, the strongest "
        "known baseline pipeline 50, the metric's bound 100; the score is the geometric mean "
        "over splits.",
    ]
    parts += _known_baselines(task, "## Known baseline pipelines")
    if show_code:  # asked for by the env option; a task.yaml cannot ask (spec check)
        parts += [
            "",
            "(Baseline code is not shown: a competition's baselines are whole pipelines, not "
            "edits of an editable region of one scaffold.)",
        ]
    return _with_tools_and_budgets(parts, tools, budget_line)


def _known_baselines(task: Task, heading: str) -> list[str]:
    known = [
        f"- {b.title}" + (f" ({b.reference})" if b.reference else "") for b in task.spec.baselines
    ]
    return ["", heading, *known] if known else []


def _with_tools_and_budgets(parts: list[str], tools: list[str], budget_line: str) -> str:
    return "\n".join([*parts, "", "## Tools", usage(tools), "", "## Budgets", budget_line])


# ------------------------------------------------------------------------- tool results
def fmt_score(x) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def setting_line(label: str, metrics: dict, error: str | None, score) -> str:
    """One setting of a test, a final evaluation or a graded submission."""
    desc = f"FAILED ({error})" if error else ", ".join(f"{k}={v:.6g}" for k, v in metrics.items())
    return f"- {label}: {desc}; score {fmt_score(score)}"


def test_text(n: int, dev_seed: int, runs, result) -> str:
    lines = [f"Test {n} (visible settings, seed {dev_seed}):"]
    for run in runs:
        score = 0.0 if run.error else result.setting_scores.get(run.label)
        lines.append(setting_line(run.label, run.metrics, run.error, score))
        if run.error and run.log_tail:
            lines.append("  log tail:\n" + _indent(run.log_tail[-1500:]))
    lines.append(
        f"Score over visible settings: {fmt_score(result.score)}"
        + (f" ({result.reason})" if result.reason else "")
    )
    return "\n".join(lines)


def final_text(what: str, info: dict, cancelled: list[int]) -> str:
    lines = [f"Submitted {what}. Final evaluation (all settings x seeds {list(info['seeds'])}):"]
    if cancelled:
        lines.insert(0, cancel_note(cancelled))
    for label, m in info["metrics"].items():
        err = info["errors"].get(label)
        lines.append(setting_line(label, m, err, info["setting_scores"].get(label)))
    lines.append(
        f"Final score: {fmt_score(info['score'])} +- {fmt_score(info['score_spread'])} over seeds"
        + (f" ({info['reason']})" if info.get("reason") else "")
    )
    if info.get("vanilla_score") is not None:
        lines.append(
            f"(your first test scored {fmt_score(info['vanilla_score'])} on the visible settings)"
        )
    return "\n".join(lines)


def graded_text(submission: str, runs, result, medal: str | None) -> str:
    lines = [f"Submitted {submission}. Graded on the private test splits:"]
    for r in runs:
        lines.append(setting_line(r.label, r.metrics, r.error, result.setting_scores.get(r.label)))
    lines.append(
        f"Final score: {fmt_score(result.score)}"
        + (f" ({result.reason})" if result.reason else "")
        + (f"; medal: {medal}" if medal else "")
    )
    return "\n".join(lines)


def footer(ep: EpisodeState) -> str:
    """The budget line under every observation (and background jobs worth knowing about)."""
    b, c = ep.budget, ep.config
    tests = "" if ep.task.is_competition else f"tests left {b.tests} | "
    # a protocol that counts only edits as steps (env/protocol.py) caps all actions apart
    steps = f"steps left {b.steps}" if b.actions is None else f"edit steps left {b.steps}"
    steps += "" if b.actions is None else f" | actions left {b.actions}"
    compute = (
        "compute: per-run timeouts only"
        if b.compute_s == float("inf")
        else (
            f"compute left {max(b.compute_s, 0):.0f} "
            + (f"GPU-s ({c.gpus} GPUs)" if c.gpus else "s")
        )
    )
    line = f"[budget] {steps} | {tests}{compute}"
    wall = ep.task.spec.budgets.wall_s
    if wall:  # the limit, not what is left: info stays replayable
        line += f" | wall-clock limit {wall:.0f}s from reset"
    running = [f"job {j.id}" for j in ep.jobs.values() if j.running]
    unseen = [f"job {j.id}" for j in ep.jobs.values() if j.result and not j.shown]
    parts = [f"running: {', '.join(running)}"] if running else []
    if unseen:
        parts.append(f"finished, not shown yet: {', '.join(unseen)} (`jobs` shows them)")
    return line + ("\n[jobs] " + "; ".join(parts) if parts else "")


def cancel_note(ids: list[int]) -> str:
    return (
        f"Cancelled {len(ids)} running background job(s) ({', '.join(map(str, ids))}): an "
        "episode does not end with experiments running."
    )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def cap(text: str) -> str:
    limit = MAX_OBS_CHARS - 200
    return text if len(text) <= limit else text[:limit] + "\n[... observation truncated ...]"


def truncate_tokens(text: str, max_tokens: int) -> str:
    """Command output cut in the middle to ``max_tokens`` (tiktoken where it loads offline)."""
    if len(text) > max_tokens:  # shorter text holds at most max_tokens tokens
        from mlsbench_env.env import tokens

        if tokens.encoding() is not None:
            return tokens.truncate_middle(text, max_tokens)
    limit = max_tokens * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return (
        text[:half] + f"\n[... output truncated: {cut} characters (~{cut // CHARS_PER_TOKEN} "
        f"tokens) omitted; the observation budget is {max_tokens} tokens ...]\n" + text[-half:]
    )
