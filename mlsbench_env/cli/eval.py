"""`mlsbench eval`: agents x tasks x seeds in parallel into the results store."""

from __future__ import annotations

from typing import Annotated

import typer

from mlsbench_env.cli.app import FinalSeeds, Protocol, console, fail, list_option, load_or_exit
from mlsbench_env.errors import MLSBenchError

TaskList = Annotated[list[str], list_option("all | lite (suites/) | task ids | task folders.")]


def eval_matrix(
    agents: Annotated[
        list[str], list_option("baseline:<name> (strongest, default, ...) or agent YAMLs.")
    ],
    tasks: TaskList = ["lite"],  # noqa: B006 (typer reads the default)
    seeds: Annotated[str, typer.Option(help="N (seeds 0..N-1) or a list: 0,3,7.")] = "1",
    workers: Annotated[int, typer.Option(help="Episodes at once.")] = 1,
    executor: Annotated[str, typer.Option(help="local | ray.")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster (ray://host:10001, auto); default local.")
    ] = None,
    store: Annotated[str, typer.Option(help="SQLite results store.")] = "runs/results.sqlite",
    runs_dir: str = "runs",
    retries: Annotated[int, typer.Option(help="Retries of a failed cell.")] = 1,
    skip_failed: Annotated[
        bool, typer.Option(help="Do not rerun cells an earlier eval recorded as failed.")
    ] = False,
    cell_timeout: Annotated[float | None, typer.Option(help="Seconds per episode.")] = None,
    sandbox: str = "local",
    final_seeds: FinalSeeds = None,
    test_budget: int | None = None,
    max_steps: int | None = None,
    compute_budget: Annotated[float | None, typer.Option(help="Compute seconds.")] = None,
    protocol: Protocol = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a field of every agent YAML.")
    ] = None,
    cpus_per_episode: float = 1.0,
    gpus_per_episode: float = 0.0,
    dry_run: Annotated[bool, typer.Option(help="List the cells and stop.")] = False,
    check_drift: Annotated[
        bool,
        typer.Option(
            help="First replay each task's reference and default on one seed and print how far "
            "this machine is from its anchors (saved beside the store for the report)."
        ),
    ] = False,
    score_unsubmitted: Annotated[
        bool,
        typer.Option(
            help="Run the final evaluation of episodes that end without a submit (agent limits, "
            "model or format errors, crashes, budgets), so every cell has a score."
        ),
    ] = True,
):
    """Run agents x tasks x seeds in parallel into the results store; a rerun resumes."""
    from pydantic import ValidationError
    from rich.live import Live

    from mlsbench_env.scale.matrix import EvalConfig, expand, run_eval
    from mlsbench_env.scale.progress import MatrixProgress
    from mlsbench_env.scale.store import ResultsStore

    env: dict = {"sandbox": sandbox, "test_budget": test_budget, "max_steps": max_steps}
    env["compute_budget_s"] = compute_budget
    env["protocol"] = protocol
    if final_seeds:
        env["final_seeds"] = [int(s) for s in final_seeds.split(",")]
    try:
        cfg = EvalConfig(
            agents=agents,
            tasks=tasks,
            seeds=[int(s) for s in seeds.split(",")] if "," in seeds else range(int(seeds)),
            workers=workers,
            executor=executor,
            address=address,
            retries=retries,
            retry_failed=not skip_failed,
            cell_timeout_s=cell_timeout,
            store=store,
            runs_dir=runs_dir,
            env={k: v for k, v in env.items() if v is not None},
            overrides=set_ or (),
            cpus_per_episode=cpus_per_episode,
            gpus_per_episode=gpus_per_episode,
            score_unsubmitted=score_unsubmitted,
        )
        cells, warnings = expand(cfg)
        results = ResultsStore(cfg.store)
    except (MLSBenchError, ValidationError, ValueError) as e:
        fail(e)
    for w in warnings:
        console.print(f"[yellow]note:[/yellow] {w}")
    have = results.statuses(c.key for c in cells)
    console.print(
        f"{len(cells)} cells: {len({c.task_id for c in cells})} tasks x {len(cfg.agents)} agents "
        f"x {len(cfg.seeds)} seeds; {sum(s == 'ok' for s in have.values())} finished before; "
        f"store {cfg.store}; executor {cfg.executor}, {cfg.workers} worker(s)"
    )
    if dry_run:
        for c in cells:
            console.print(f"  {have.get(c.key, 'todo'):7} {c.describe()}  [dim]{c.key}[/dim]")
        return
    if check_drift:
        drift_check(cells, cfg.store, sandbox)
    progress = MatrixProgress(len(cells), cfg.workers)
    live = Live(progress, console=console, refresh_per_second=2) if console.is_terminal else None

    def on_event(e):
        line = progress.update(e)
        if line and live is None:
            console.print(f"{line}  [dim]| {progress.line()}[/dim]")

    try:
        if live:
            with live:
                summary = run_eval(cfg, store=results, on_event=on_event)
        else:
            summary = run_eval(cfg, store=results, on_event=on_event)
    except MLSBenchError as e:
        fail(e)
    except KeyboardInterrupt:
        console.print("\ninterrupted; rerun the same command to resume")
        raise typer.Exit(130) from None
    console.print(
        f"eval {summary.eval_id}: {summary.done} done, {summary.skipped} finished before, "
        f"{summary.failed} failed, {summary.retried} retried, {summary.wall_s:.0f} s. "
        f"See: mlsbench report --store {cfg.store}"
    )
    raise typer.Exit(1 if summary.failed else 0)


def drift_check(cells, store: str, sandbox: str) -> None:
    """The drift of each task of the matrix, once, printed and saved beside the store."""
    from mlsbench_env.analysis.drift import save_drift
    from mlsbench_env.cli.tasks import print_drift

    reports = []
    for task in dict.fromkeys(c.task for c in cells):
        t = load_or_exit(task)
        console.print(f"calibration drift of {t.id} ...")
        if t.anchors() is None:
            console.print("  no anchors.json: nothing to compare")
        elif drift := print_drift(t, sandbox):
            reports.append(drift)
    if reports:
        console.print(f"drift saved to {save_drift(store, reports)}")
