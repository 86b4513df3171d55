"""`mlsbench report`, `rescore` and `export`: what the results store and run folders hold, as a
report, as today's scores, as fine-tuning data."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlsbench_env.cli.app import console, fail, list_option
from mlsbench_env.errors import MLSBenchError


def report(
    outdir: Annotated[
        str | None, typer.Argument(help="Where to write the files (the same as --out).")
    ] = None,
    store: Annotated[str, typer.Option(help="SQLite results store.")] = "runs/results.sqlite",
    out: Annotated[str | None, typer.Option(help="Write HTML, PNG, CSV and JSON here.")] = None,
    tasks: Annotated[list[str] | None, list_option("Only these task ids.")] = None,
    agents: Annotated[list[str] | None, list_option("Only these agents.")] = None,
    compare: Annotated[
        list[str] | None, list_option("Two agents to compare (default: every pair).")
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="Another report.json: say whether they are comparable.")
    ] = None,
    plots: bool = True,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="html: the report's page, CSV and JSON; mlsbench: MLS-Bench's per-task "
            "leaderboard CSVs and the overall score over its 12 research areas.",
        ),
    ] = "html",
    protocol: Annotated[
        str | None,
        typer.Option(help="Only episodes of this protocol preset (needed where several ran)."),
    ] = None,
):
    """Leaderboard, per-task tables, paired comparisons; files with --out."""
    from pathlib import Path

    from mlsbench_env.analysis import (
        comparable,
        render_terminal,
        report_from_store,
        write_report,
    )
    from mlsbench_env.scale.store import ResultsStore

    pair = compare
    if pair and len(pair) != 2:
        fail(f"--compare takes two agents, got {pair}")
    out = out or outdir
    if format_ not in ("html", "mlsbench"):
        fail(f"--format takes html or mlsbench, got {format_!r}")
    if not Path(store).is_file():
        fail(f"no results store at {store} (run `mlsbench eval`)")
    if format_ == "mlsbench":
        if not out:
            fail("--format mlsbench writes files: give a folder (OUTDIR or --out)")
        _report_mlsbench(ResultsStore(store), out, tasks, agents)
        return
    try:
        rep = report_from_store(
            ResultsStore(store),
            tasks=tasks or None,
            agents=agents or None,
            compare=tuple(pair) if pair else None,
            protocol=protocol,
        )
    except MLSBenchError as e:
        fail(e)
    render_terminal(rep, console)
    if out:
        files = write_report(rep, out, plots=plots)
        console.print(f"wrote {len(files)} files; open {Path(out) / 'index.html'}")
    if against:
        why = comparable(rep.to_json(), json.loads(Path(against).read_text()))
        console.print("comparable with " + against if not why else "[yellow]not comparable:[/]")
        for w in why:
            console.print(f"  {w}")


def _report_mlsbench(store, out: str, tasks, agents) -> None:
    from mlsbench_env.analysis.mlsbench_format import AREAS, write_mlsbench

    rows = store.episodes(status="ok", tasks=tasks or None, agents=agents or None)
    if not rows:
        which = " for these --tasks/--agents" if tasks or agents else ""
        fail(f"no finished episodes in {store.path}{which}")
    result = write_mlsbench(rows, out)
    for w in result["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    table = Table("agent", "protocol", "MLS-Bench area", "score", title="mean over areas")
    for r in result["overall"]:
        for a in AREAS:
            if r.get(a) is not None:
                table.add_row(r["agent"], r["protocol"], a, f"{r[a]:.1f}")
        overall = f"overall ({r['areas']} areas, {r['tasks']} tasks)"
        table.add_row(r["agent"], r["protocol"], overall, f"{r['overall']:.1f}", end_section=True)
    console.print(table)
    console.print(f"wrote {len(result['files'])} files to {out}")


def rescore(
    runs: Annotated[
        list[str] | None, typer.Argument(help="Run folders (or their trajectory.jsonl).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="Results store: record the rescores there; with --all, rescore its episodes."
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every finished episode of --store.")] = False,
    task: Annotated[str | None, typer.Option(help="With --all: only this task.")] = None,
    final_seeds: Annotated[str | None, typer.Option(help="Default: the recorded seeds.")] = None,
    tasks_dir: Annotated[
        str | None, typer.Option(help="Folder of task folders (default: the shipped tasks).")
    ] = None,
    workers: int = 1,
):
    """Re-run the final evaluation of stored submissions on today's task; old vs new scores."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from mlsbench_env.analysis.rescore import rescore_run
    from mlsbench_env.scale.store import ResultsStore

    results = ResultsStore(store) if store else None
    targets = list(runs or [])
    keys = {}
    if results is not None:
        for r in results.episodes(status="ok", tasks=[task] if task else None):
            if r.get("trajectory"):
                keys[str(Path(r["trajectory"]).resolve())] = r["cell_key"]
                if all_:
                    targets.append(r["trajectory"])
    if not targets:
        fail("give run folders, or --store with --all")
    seeds = [int(s) for s in final_seeds.split(",")] if final_seeds else None
    console.print(f"rescoring {len(targets)} episode(s) ...")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = list(pool.map(lambda t: rescore_run(t, seeds=seeds, tasks_dir=tasks_dir), targets))
    table = Table("run", "task", "agent", "seed", "old", "new", "change", "task/anchors", "error")
    failed = 0
    for r in rows:
        old, new = r.get("old_score"), r.get("new_score")
        changed = [
            name
            for name, k in (("task", "task_hash"), ("anchors", "anchors_hash"))
            if r.get(f"{k}_then") != r.get(f"{k}_now")
        ]
        table.add_row(
            Path(r["trajectory"]).name,
            str(r["task"]),
            str(r["agent"]),
            str(r["seed"]),
            "n/a" if old is None else f"{old:.1f}",
            "n/a" if new is None else f"{new:.1f}",
            "" if old is None or new is None else f"{new - old:+.1f}",
            ", ".join(changed) + (" changed" if changed else "same"),
            (r.get("error") or "")[:80],
        )
        failed += new is None
        if results is not None:
            cell = keys.get(str(Path(r["trajectory"]).resolve()))
            results.record_rescore({**r, "cell_key": cell})
    console.print(table)
    raise typer.Exit(1 if failed else 0)


def export(
    runs: Annotated[list[str], typer.Argument(help="Run folders, or folders of them (runs/).")],
    format_: Annotated[
        str, typer.Option("--format", help="chat-jsonl | openai-tools | sharegpt")
    ] = "chat-jsonl",
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output folder (episodes.jsonl + README.md).")
    ] = "export",
    min_score: Annotated[float | None, typer.Option(help="Keep episodes scoring >= this.")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only these tasks.")] = None,
    agent: Annotated[list[str] | None, typer.Option("--agent", help="Only these agents.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="End statuses to keep (default: submitted, truncated)."),
    ] = None,
    redact_final: Annotated[
        bool,
        typer.Option(help="Replace the final evaluation's observation (it names hidden settings)."),
    ] = False,
):
    """Write episodes as fine-tuning data with a dataset card (loads with `datasets`)."""
    import shlex

    from mlsbench_env.analysis.export import Filters, export

    filters = Filters(
        min_score=min_score,
        tasks=tuple(task or ()),
        agents=tuple(agent or ()),
        statuses=tuple(status or ("submitted", "truncated")),
    )
    try:
        args = [*runs, "--format", format_, "-o", out]
        args += ["--min-score", f"{min_score:g}"] if min_score is not None else []
        args += [x for t in task or () for x in ("--task", t)]
        args += [x for a in agent or () for x in ("--agent", a)]
        args += [x for st in status or () for x in ("--status", st)]
        args += ["--redact-final"] if redact_final else []
        command = "mlsbench export " + shlex.join(args)
        result = export(runs, out, format_, filters, redact=redact_final, command=command)
    except MLSBenchError as e:
        fail(e)
    skipped = ", ".join(f"{n} {why}" for why, n in result.skipped.items()) or "none"
    console.print(
        f"wrote {len(result.episodes)} episode(s) to {result.data_file} (skipped: {skipped}); "
        f"dataset card {result.card}"
    )
