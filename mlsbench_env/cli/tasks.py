"""`mlsbench list`, `show`, `validate` and `calibrate`: the shipped tasks, their prompts, their
checks and their anchors."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Column, Table

from mlsbench_env.cli.app import TaskArg, console, fail, load_or_exit, run_progress
from mlsbench_env.errors import MLSBenchError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (keys above).")]
LIST_KEYS = (
    "id",
    "gym_id",
    "version",
    "title",
    "kind",
    "domain",
    "settings",
    "hidden_settings",
    "baselines",
    "reference_baseline",
    "anchor",
    "budgets",
    "error",
)
# `list`'s optional columns, most useful first, shown while the title keeps this many characters
TITLE_MIN = 24
OPTIONAL_COLUMNS = ("reference", "anchor", "budget", "domain")


def summary(task) -> dict:
    """A task as `mlsbench list --json` prints it."""
    spec = task.spec
    shown = spec.settings if task.is_competition else task.visible_settings
    return {
        "id": task.id,
        "gym_id": f"mlsbench/{task.id}-v{spec.version}",
        "version": spec.version,
        "title": spec.title,
        "kind": spec.kind,
        "domain": spec.domain,
        "settings": [s.label for s in shown],
        "hidden_settings": len(spec.settings) - len(shown),
        "baselines": list(task.baseline_names),
        "reference_baseline": spec.reference_baseline,
        "anchor": spec.anchor,
        "budgets": spec.budgets.model_dump(),
        "error": None,
    }


def _cells(row: dict) -> dict[str, str]:
    if row["error"]:
        state = "unavailable" if row["id"].startswith("mlebench-") else "invalid"
        return {"id": row["id"], "settings": f"[red]{state}[/red]", "title": row["error"]}
    b = row["budgets"]
    if row["kind"] == "competition":  # settings are test splits, all graded at submit
        settings = f"{len(row['settings'])} test splits"
        budget = f"{b['compute_s']:.0f} s, {b['max_steps']} steps"
        budget += f", {b['wall_s']:.0f} s wall" if b["wall_s"] else ""
    else:
        settings = f"{len(row['settings'])} + {row['hidden_settings']} hidden"
        budget = f"{b['tests']} tests, {b['compute_s']:.0f} s, {b['max_steps']} steps"
    return {
        "id": row["id"],
        "kind": row["kind"],
        "domain": row["domain"],
        "settings": settings,
        "reference": row["reference_baseline"],
        "anchor": row["anchor"],
        "budget": budget,
        "title": row["title"],
    }


def task_table(rows: list[dict], width: int) -> Table:
    """id, settings and title always; the optional columns that fit `width`. Only the title
    wraps, at spaces, so ids and names are never cut."""
    cells = [_cells(r) for r in rows]

    def need(name: str) -> int:  # the widest cell, its padding and the space between columns
        return max(len(name), *(len(c.get(name, "")) for c in cells)) + 3

    shown = ["id", "settings"]
    room = width - TITLE_MIN - 2 - sum(need(n) for n in shown)
    for name in OPTIONAL_COLUMNS:
        if need(name) <= room:
            shown.append(name)
            room -= need(name)
    table = Table(*(Column(n, no_wrap=True) for n in shown), box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("title", min_width=TITLE_MIN)
    for c in cells:
        table.add_row(*(c.get(n, "") for n in shown), c["title"])
    return table


SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="mlebench:PATH lists MLE-bench's competitions prepared in PATH (docs/mlebench.md) "
        "instead of the shipped tasks.",
    ),
]


def list_tasks(as_json: JsonOpt = False, source: SourceOpt = None):
    """List the shipped tasks (or, with --source mlebench:PATH, MLE-bench's competitions).

    --json prints a list with one object per task, with the keys:
    id, gym_id (for gym.make), version, title, kind (research | competition),
    domain, settings (visible setting labels; a competition's test splits),
    hidden_settings (how many), baselines, reference_baseline,
    anchor (what scores 50 on a metric: reference, the reference baseline;
    best, the best baseline on that metric),
    budgets (tests, compute_s, max_steps, command_timeout_s,
    setting_timeout_s, wall_s), error (null; or why the task does not load,
    and then the other keys are null).
    """
    from mlsbench_env.spec import builtin_task_ids
    from mlsbench_env.spec import load_task as load

    rows = []
    if source is not None:
        rows = _mlebench_rows(source)
    for tid in builtin_task_ids() if source is None else []:
        try:
            rows.append(summary(load(tid)))
        except MLSBenchError as e:
            rows.append({**dict.fromkeys(LIST_KEYS), "id": tid, "error": str(e)})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    console.print(task_table(rows, console.width))
    best = [r["id"] for r in rows if r["anchor"] == "best"]
    console.print(
        "reference: the strongest baseline. anchor: what scores 50 on a metric, the reference "
        f"baseline (reference) or the best baseline on that metric (best: "
        f"{', '.join(best) or 'no task'}). A competition's default baseline is its sample "
        "submission. Every setting, baseline and budget: mlsbench list --json"
    )


def _mlebench_rows(source: str) -> list[dict]:
    """MLE-bench's competitions in a prepared-data folder; an unprepared one with the reason."""
    from mlsbench_env.spec import mlebench

    if not source.startswith("mlebench:"):
        fail(f"--source {source!r}: expected mlebench:PATH (MLE-bench's prepared-data folder)")
    rows = []
    try:
        for tid, why in mlebench.list_rows(source):
            try:
                if why is None:
                    task = mlebench.load_mlebench_task(tid.removeprefix(mlebench.PREFIX), source)
                    rows.append(summary(task))
                    continue
            except MLSBenchError as e:
                why = str(e)
            gym_id = f"mlsbench/{tid}-v0"
            rows.append({**dict.fromkeys(LIST_KEYS), "id": tid, "gym_id": gym_id, "error": why})
    except MLSBenchError as e:
        fail(str(e))
    return rows


def show(task: TaskArg, as_json: JsonOpt = False):
    """Print the exact prompt the agent sees at reset.

    --json prints one object with the keys:
    id, gym_id, version, title, kind, domain, prompt (the text above),
    settings (the visible setting labels), tools (the tool schemas of info),
    budget (an episode's start: steps_left, tests_left, compute_s_left).
    """
    from mlsbench_env.env import ResearchEnv

    t = load_or_exit(task)
    env = ResearchEnv(t, runs_dir=None)
    obs, info = env.reset(seed=0)
    env.close()
    if not as_json:
        typer.echo(obs)
        return
    spec = t.spec
    out = {
        "id": t.id,
        "gym_id": info["gym_id"],
        "version": spec.version,
        "title": spec.title,
        "kind": spec.kind,
        "domain": spec.domain,
        "prompt": obs,
        "settings": [s.label for s in t.visible_settings],
        "tools": info["tools"],
        "budget": info["budget"],
    }
    typer.echo(json.dumps(out, indent=2))


def validate(
    task: Annotated[str | None, typer.Argument()] = None,
    all_tasks: Annotated[bool, typer.Option("--all")] = False,
    no_run: Annotated[bool, typer.Option("--no-run", help="Skip running settings.")] = False,
):
    """Check a task: spec, baselines inside the edit surface, default scaffold runs, metrics."""
    from mlsbench_env.analysis.calibration import validate as check
    from mlsbench_env.spec import builtin_task_ids

    ids = builtin_task_ids() if all_tasks else [task] if task else []
    if not ids:
        fail("give a TASK or --all")
    failed = 0
    for tid in ids:
        t = load_or_exit(tid)
        console.print(f"validating {t.id} ...")
        if no_run:
            problems = check(t, run=False)
        else:
            with run_progress(len(t.spec.settings), f"{t.id}: default scaffold") as progress:
                problems = check(t, progress=progress)
        replay = not no_run and not problems and t.anchors() is not None
        problems += health_problems(t)
        for p in problems:
            console.print(f"  [red]problem:[/red] {p}")
        if replay:  # the anchors' own health does not stop it: drift is about this machine
            print_drift(t)
        console.print(f"  {'[green]ok[/green]' if not problems else '[red]invalid[/red]'}")
        failed += bool(problems)
    raise typer.Exit(1 if failed else 0)


def print_drift(task, backend: str = "local"):
    """Replay the reference and the default on one seed and print how far they are from the
    anchors; a drift beyond WARN_SPREADS is a warning line (the task stays valid). The report,
    or None when the replay could not be compared."""
    from mlsbench_env.analysis.drift import WARN_SPREADS, check_drift

    n = 2 * len(task.spec.settings)
    try:
        with run_progress(n, f"{task.id}: drift replay") as advance:
            drift = check_drift(
                task,
                backend=backend,
                progress=lambda name, label, seed, run: advance(label, seed, run, f"{name}: "),
            )
    except MLSBenchError as e:
        console.print(f"  [yellow]warning:[/yellow] no drift check: {e}")
        return None
    console.print(f"  drift: {drift.summary()}")
    console.print(
        f"  calibration CPU, estimated from the replay: {drift.calibration_cpu_s / 60:.1f} min "
        f"({drift.calibration_runs} runs)"
    )
    if drift.drifted:
        console.print(
            f"  [yellow]warning:[/yellow] calibration drift of {drift.max_spreads:.1f} seed "
            f"spreads (beyond {WARN_SPREADS:g}): this machine does not reproduce anchors.json; "
            f"scores here are off by that much (re-calibrate with `mlsbench calibrate {task.id}`)"
        )
    return drift


def calibrate(
    task: TaskArg,
    workers: int = 1,
    sandbox: str = "local",
    dry_run: Annotated[bool, typer.Option(help="Do not write anchors.json.")] = False,
):
    """Run default + every baseline over all settings x seeds; write anchors.json."""
    from mlsbench_env.analysis.calibration import calibrate as measure
    from mlsbench_env.analysis.calibration import write_anchors
    from mlsbench_env.analysis.health import health, health_markdown

    t = load_or_exit(task)
    n = len(t.baseline_names) * len(t.spec.settings) * len(t.spec.seeds.final)
    console.print(
        f"calibrating {t.id}: {len(t.baseline_names)} methods x "
        f"{len(t.spec.settings)} settings x {len(t.spec.seeds.final)} seeds"
    )
    try:
        with run_progress(n, f"calibrating {t.id}") as advance:
            anchors, rescored = measure(
                t,
                backend=sandbox,
                workers=workers,
                progress=lambda name, label, seed, run: advance(label, seed, run, f"{name}: "),
            )
    except ValueError as e:
        console.print(f"[red]calibration failed:[/red] {e}")
        raise typer.Exit(1) from None
    if not dry_run:
        console.print(f"wrote {write_anchors(t, anchors)}")
    console.print(markdown_table(t, anchors, rescored))
    console.print(health_markdown(health(t, anchors)))
    if anchors.get("medals"):
        console.print(
            "medal thresholds ("
            + t.spec.metrics[0].name
            + ", mean over splits): "
            + ", ".join(f"{k} {v:.4g}" for k, v in anchors["medals"].items())
        )
    for name, errs in anchors["errors"].items():
        for err in errs:
            console.print(f"[yellow]{name}[/yellow]: {err.splitlines()[0]}")


def health_problems(task) -> list[str]:
    """The calibration health check of a task's shipped anchors, as problems (none without
    anchors.json: a task being written is not calibrated yet)."""
    from mlsbench_env.analysis.health import health

    if task.anchors() is None:
        return []
    try:
        return [f"calibration health: {f.message}" for f in health(task).failures]
    except MLSBenchError as e:
        return [f"calibration health: {e}"]


def markdown_table(task, anchors: dict, rescored: dict) -> str:
    """The calibration table (markdown): per method, per setting metric mean +- std and score."""
    from mlsbench_env.scoring import mean_and_spread

    labels = [s.label + (" (hidden)" if s.hidden else "") for s in task.spec.settings]
    lines = ["| method | " + " | ".join(labels) + " | score |", "|---" * (len(labels) + 2) + "|"]
    for name, fr in rescored.items():
        cells = []
        for s in task.spec.settings:
            vals = anchors["results"][name].get(s.label, {})
            ms = []
            for m in task.spec.metrics:
                mean, sd = mean_and_spread(vals.get(m.name) or [float("nan")])
                ms.append(f"{mean:.4g} ± {sd:.2g}")
            cells.append(" / ".join(ms) + f" ({fr.setting_scores.get(s.label, 0.0):.1f})")
        score = "n/a" if fr.score is None else f"{fr.score:.1f} ± {fr.spread:.1f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {score} |")
    return "\n".join(lines)
