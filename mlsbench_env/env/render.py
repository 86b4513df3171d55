"""The task prompt: the first observation of every episode. Nothing about hidden settings."""

from __future__ import annotations

from mlsbench_env.scoring import seed_mean
from mlsbench_env.spec import Task
from mlsbench_env.tools import usage
from mlsbench_env.workspace import Workspace


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


def render_prompt(task: Task, ws: Workspace, tools: list[str], budget_line: str) -> str:
    if task.is_competition:
        return render_competition_prompt(task, ws, tools, budget_line)
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
    parts += [
        "",
        f"Metrics: {_metric_desc(task)}.",
        "Scores are normalized per setting: the unchanged scaffold scores 0, the "
        "strongest known baseline 50, the metric's bound 100; the task score is the "
        "geometric mean over settings.",
    ]
    known = [f"- {b.title}" + (f" ({b.reference})" if b.reference else "") for b in s.baselines]
    if known:
        parts += ["", "## Known baselines", *known]
    table = baseline_table(task)
    if table:
        parts += ["", "Their results on the visible settings (mean over the final seeds):", table]
    parts += ["", "## Tools", usage(tools), "", "## Budgets", budget_line]
    return "\n".join(parts)


def render_competition_prompt(task: Task, ws: Workspace, tools: list[str], budget_line: str) -> str:
    s, comp = task.spec, task.spec.competition
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
    known = [f"- {b.title}" + (f" ({b.reference})" if b.reference else "") for b in s.baselines]
    if known:
        parts += ["", "## Known baseline pipelines", *known]
    parts += ["", "## Tools", usage(tools), "", "## Budgets", budget_line]
    return "\n".join(parts)
