"""The `mlsbench` command line."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from mlsbench_env.errors import MLSBenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Gym-style research-task environments for AI research agents.",
)
console = Console()
TaskArg = Annotated[str, typer.Argument(help="Task id (see `mlsbench list`) or a task folder.")]


def _load(task: str):
    from mlsbench_env.spec import load_task

    try:
        return load_task(task)
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None


def _progress_printer(prefix: str = ""):
    def show(label, seed, run):
        status = "[red]failed[/red]" if run.error else "[green]ok[/green]"
        metrics = (
            "" if run.error else " " + ", ".join(f"{k}={v:.4g}" for k, v in run.metrics.items())
        )
        console.print(f"  {prefix}{label} seed {seed}: {status}{metrics} ({run.wall_s:.1f} s)")

    return show


@app.command("list")
def list_tasks():
    """List the shipped tasks."""
    from mlsbench_env.spec import builtin_task_ids, load_task

    table = Table("kind", "domain", "visible settings", "hidden", "baselines", "budgets")
    table.columns.insert(0, Column("id", no_wrap=True))  # ids are what users copy: never cut
    for column in table.columns[1:]:
        column.overflow = "fold"
    for tid in builtin_task_ids():
        try:
            t = load_task(tid)
        except MLSBenchError as e:
            table.add_row(tid, "", "[red]invalid[/red]", str(e), "", "", "")
            continue
        b = t.spec.budgets
        if t.is_competition:  # settings are test splits, all graded at submit
            splits, hidden = ", ".join(s.label for s in t.spec.settings) + " (test splits)", "-"
            budget = f"{b.compute_s:.0f} s, {b.max_steps} steps"
            budget += f", {b.wall_s:.0f} s wall" if b.wall_s else ""
        else:
            splits = ", ".join(s.label for s in t.visible_settings)
            hidden = str(len(t.spec.settings) - len(t.visible_settings))
            budget = f"{b.tests} tests, {b.compute_s:.0f} s, {b.max_steps} steps"
        table.add_row(
            tid,
            t.spec.kind,
            t.spec.domain,
            splits,
            hidden,
            ", ".join(f"{n}*" if n == t.spec.reference_baseline else n for n in t.baseline_names),
            budget,
        )
    console.print(table)
    console.print(
        "* reference (strongest) baseline: 50 points; a competition's default is its "
        "sample submission"
    )


@app.command()
def show(task: TaskArg):
    """Print the exact prompt the agent sees at reset."""
    from mlsbench_env.env import ResearchEnv

    env = ResearchEnv(_load(task), runs_dir=None)
    obs, _ = env.reset(seed=0)
    env.close()
    typer.echo(obs)


def _make_agent(task, agent: str):
    from mlsbench_env.episode import BaselineAgent

    if agent.startswith("baseline:"):
        name = agent.split(":", 1)[1]
        if name in ("strongest", "reference"):
            name = task.spec.reference_baseline
        try:
            return BaselineAgent(task, name)
        except MLSBenchError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    console.print(
        f"[red]error:[/red] unknown agent {agent!r}; expected baseline:<name> "
        f"(one of: {', '.join(task.baseline_names)}, strongest) or an agent YAML file "
        "(e.g. agents/openai.yaml)"
    )
    raise typer.Exit(2)


@app.command()
def run(
    task: Annotated[str | None, typer.Option(help="Task id or folder.")] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            help="baseline:<name> plays that baseline's edit; a YAML file (agents/openai.yaml) "
            "runs that LLM agent (docs/agents.md)."
        ),
    ] = None,
    seed: int = 0,
    sandbox: str = "local",
    runs_dir: str = "runs",
    final_seeds: Annotated[
        str | None, typer.Option(help="e.g. 0,1 (quick, not comparable)")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override an agent YAML field, e.g. model.temperature=0.2."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name (= --set model.name=...).")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server, e.g. http://localhost:8000/v1.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="A run folder: replay its recorded actions, then go on with the model."),
    ] = None,
    score_unsubmitted: Annotated[
        bool,
        typer.Option(
            help="When the agent stops without submitting (a limit, model or format errors, a "
            "crash) or a budget runs out, run the final evaluation anyway (of its last test's "
            "code, else its current code) so the episode has a score."
        ),
    ] = True,
):
    """Play one whole episode with an agent and print the final score."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.episode import run_episode

    if resume or (agent and agent.endswith((".yaml", ".yml"))):
        overrides = list(set_ or [])
        overrides += [f"model.name={model}"] if model else []
        overrides += [f"model.base_url={base_url}"] if base_url else []
        seeds = tuple(int(s) for s in final_seeds.split(",")) if final_seeds else None
        result = _run_llm(
            task, agent, seed, sandbox, runs_dir, seeds, overrides, resume, score_unsubmitted
        )
        scored = "not_submitted" in result.final_info
        if result.terminated or result.truncated or scored:
            _print_result(result)
        if not (result.terminated or result.truncated) and result.run_dir:
            what = "Not submitted" if scored else "No final evaluation"
            console.print(f"{what}; continue with: mlsbench run --resume {result.run_dir}")
        return
    if not task or not agent:
        console.print("[red]error:[/red] give --task and --agent (or --resume RUN_DIR)")
        raise typer.Exit(2)
    t = _load(task)
    a = _make_agent(t, agent)
    opts = {"sandbox": sandbox, "runs_dir": runs_dir, "agent_name": a.name}
    opts["submit_on_truncation"] = score_unsubmitted
    if final_seeds:
        opts["final_seeds"] = tuple(int(s) for s in final_seeds.split(","))
    env = ResearchEnv(t, **opts)
    env.progress = _progress_printer()

    def on_step(i, action, obs, info):
        tool = action.get("tool") if isinstance(action, dict) else "?"
        console.print(
            f"[bold]step {i}[/bold] {tool}: {'ok' if info.get('ok') else 'failed'} "
            f"| {info['budget']}"
        )
        if tool == "submit":
            console.print("  final evaluation done")

    console.print(f"Running {a.name} on {t.id} (seed {seed}) ...")
    with console.status("running experiments ..."):
        result = run_episode(env, a, seed=seed, on_step=on_step)
    env.close()
    _print_result(result)


def _run_llm(task, agent, seed, sandbox, runs_dir, final_seeds, overrides, resume, score=True):
    """`mlsbench run` with an LLM agent (a YAML file), or resuming a saved run."""
    from rich.markup import escape

    from mlsbench_env.agent import (
        LLMAgent,
        ReplayModel,
        load_config,
        make_model,
        saved_run,
        summarize,
    )
    from mlsbench_env.env import ResearchEnv

    env_opts: dict = {}
    extra: tuple[dict, ...] = ()
    try:
        if resume:
            header, saved = saved_run(resume)
            task = task or header.get("task")
            seed = header.get("seed", seed)
            # the saved episode's env options, but this run's folders and name
            mine = ("runs_dir", "work_dir", "agent_name")
            env_opts = {k: v for k, v in (header.get("config") or {}).items() if k not in mine}
            if not agent and saved is None:
                console.print(f"[red]error:[/red] {resume} has no agent config; give --agent")
                raise typer.Exit(2)
            cfg = load_config(agent or saved, overrides)
            extra = ({"type": "resumed_from", "run_dir": str(resume)},)
        else:
            cfg = load_config(agent, overrides)
        if not task:
            console.print("[red]error:[/red] give --task")
            raise typer.Exit(2)
        t = _load(task)
        llm = make_model(cfg.model)
        if resume:
            llm = ReplayModel.from_trajectory(
                resume, then=llm, action_format=cfg.model.action_format
            )
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    env_opts.setdefault("sandbox", sandbox)
    env_opts.update(
        runs_dir=runs_dir, agent_name=cfg.name, obs_max_tokens=cfg.context.obs_max_tokens
    )
    if cfg.tools:
        env_opts["tools"] = cfg.tools
    if final_seeds:
        env_opts["final_seeds"] = final_seeds
    if score:
        env_opts["submit_on_truncation"] = True
    env = ResearchEnv(t, **env_opts)
    env.progress = _progress_printer()

    def on_step(i, action, obs, info, totals):
        console.print(f"[bold]step {i}[/bold] {escape(summarize(action, obs, info, totals))}")

    agent_ = LLMAgent(
        cfg,
        llm,
        on_step=on_step,
        on_note=lambda m: console.print(f"  [dim]{escape(m)}[/dim]"),
        score_unsubmitted=score,
    )
    console.print(f"Running {cfg.name} ({llm.name}) on {t.id} (seed {seed}) ...")
    try:
        result = agent_.run(env, seed=seed, extra_records=extra)
    except KeyboardInterrupt:
        env.close()
        where = env.run_dir or "(no run folder)"
        console.print(f"\ninterrupted; continue with: mlsbench run --resume {where}")
        raise typer.Exit(130) from None
    env.close()
    tot = result.totals
    console.print(
        f"Agent exit status: {result.status}; {tot.model_calls} model calls, "
        f"{tot.input_tokens + tot.cached_input_tokens} input ({tot.cached_input_tokens} cached) / "
        f"{tot.output_tokens} output tokens{' (some estimated)' if tot.estimated else ''}, "
        f"${tot.cost_usd:.4f}"
    )
    return result.episode


def _print_result(result) -> None:
    info = result.final_info
    if info.get("not_submitted"):
        console.print(
            f"Not submitted (agent exit status {info['not_submitted']}): the final evaluation "
            "ran on its last test's code, else its current code"
        )
    table = Table("setting", "metrics (mean over seeds)", "score", "error")
    for label, m in info.get("metrics", {}).items():
        err = (info.get("errors") or {}).get(label, "")
        table.add_row(
            label,
            ", ".join(f"{k}={v:.4g}" for k, v in m.items()),
            f"{info.get('setting_scores', {}).get(label, 0.0):.1f}",
            err[:80],
        )
    console.print(table)
    if result.score is None:
        console.print(f"[red]no score[/red]: {info.get('reason')}")
    else:
        console.print(
            f"Final score: [bold]{result.score:.1f}[/bold] +- "
            f"{result.score_spread:.1f} (over seeds {info.get('seeds')})"
        )
    if info.get("medal"):
        console.print(f"Medal (against the baseline pipelines' leaderboard): {info['medal']}")
    if result.vanilla_score is not None:
        console.print(f"First test (vanilla) score on visible settings: {result.vanilla_score:.1f}")
    if result.run_dir:
        console.print(f"Trajectory: {result.run_dir}/trajectory.jsonl")


@app.command()
def play(
    task: Annotated[str, typer.Option(help="Task id or folder.")],
    seed: int = 0,
    sandbox: str = "local",
    runs_dir: str = "runs",
):
    """Play an episode in the terminal: type JSON actions or `tool key=value ...`."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.tools import ActionError, parse_short_form

    env = ResearchEnv(_load(task), sandbox=sandbox, runs_dir=runs_dir, agent_name="human")
    env.progress = _progress_printer()
    obs, _ = env.reset(seed=seed)
    typer.echo(obs)
    done = False
    while not done:
        try:
            line = input("\naction> ").strip()
        except EOFError:
            break
        if not line:
            continue
        if not line.startswith("{"):
            try:
                line = json.dumps(parse_short_form(line))
            except ActionError as e:
                typer.echo(f"Invalid input: {e}")
                continue
        obs, reward, terminated, truncated, info = env.step(line)
        typer.echo(obs)
        done = terminated or truncated
    if done:
        typer.echo(f"\nEpisode over. Reward: {reward:.2f}")
    if env.run_dir:
        typer.echo(f"Trajectory: {env.run_dir}/trajectory.jsonl")
    env.close()


@app.command()
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
        console.print("[red]error:[/red] give a TASK or --all")
        raise typer.Exit(2)
    failed = 0
    for tid in ids:
        t = _load(tid)
        console.print(f"validating {t.id} ...")
        problems = check(t, run=not no_run, progress=_progress_printer())
        for p in problems:
            console.print(f"  [red]problem:[/red] {p}")
        console.print(f"  {'[green]ok[/green]' if not problems else '[red]invalid[/red]'}")
        failed += bool(problems)
    raise typer.Exit(1 if failed else 0)


@app.command()
def calibrate(
    task: TaskArg,
    workers: int = 1,
    sandbox: str = "local",
    dry_run: Annotated[bool, typer.Option(help="Do not write anchors.json.")] = False,
):
    """Run default + every baseline over all settings x seeds; write anchors.json."""
    from mlsbench_env.analysis.calibration import calibrate as measure
    from mlsbench_env.analysis.calibration import write_anchors

    t = _load(task)
    console.print(
        f"calibrating {t.id}: {len(t.baseline_names)} methods x "
        f"{len(t.spec.settings)} settings x {len(t.spec.seeds.final)} seeds"
    )

    def progress(name, label, seed, run):
        _progress_printer(f"{name}: ")(label, seed, run)

    try:
        anchors, rescored = measure(t, backend=sandbox, workers=workers, progress=progress)
    except ValueError as e:
        console.print(f"[red]calibration failed:[/red] {e}")
        raise typer.Exit(1) from None
    if not dry_run:
        console.print(f"wrote {write_anchors(t, anchors)}")
    console.print(markdown_table(t, anchors, rescored))
    if anchors.get("medals"):
        console.print(
            "medal thresholds ("
            + t.spec.metrics[0].name
            + ", mean over splits): "
            + ", ".join(f"{k} {v:.4g}" for k, v in anchors["medals"].items())
        )
    for name, errs in anchors["errors"].items():
        for e in errs:
            console.print(f"[yellow]{name}[/yellow]: {e.splitlines()[0]}")


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


# ----------------------------------------------------------------------- eval, report, rescore
class _ListOptions(typer.core.TyperCommand):
    """Lets a list option take several values (``--agents a.yaml b.yaml``) as well as repeats:
    click options take one value each, so ``--agents a b`` is rewritten to ``--agents a
    --agents b`` before parsing."""

    variadic = ("--agents", "--tasks", "--compare")

    def parse_args(self, ctx, args):
        out, current = [], None
        for a in args:
            if a in self.variadic:
                current = a
                continue
            if a.startswith("-"):
                current = None
            elif current:
                out.append(current)
            out.append(a)
        return super().parse_args(ctx, out)


def _split(values) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


@app.command("eval", cls=_ListOptions)
def eval_matrix(
    agents: Annotated[
        list[str], typer.Option(help="baseline:<name> (strongest, default, ...) or agent YAMLs.")
    ],
    tasks: Annotated[
        list[str], typer.Option(help="all | lite (suites/) | task ids | task folders.")
    ] = ["lite"],  # noqa: B006 (typer reads the default)
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
    final_seeds: Annotated[
        str | None, typer.Option(help="e.g. 0,1 (quick, not comparable)")
    ] = None,
    test_budget: int | None = None,
    max_steps: int | None = None,
    compute_budget: Annotated[float | None, typer.Option(help="Compute seconds.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a field of every agent YAML.")
    ] = None,
    cpus_per_episode: float = 1.0,
    gpus_per_episode: float = 0.0,
    dry_run: Annotated[bool, typer.Option(help="List the cells and stop.")] = False,
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

    from mlsbench_env.scale.matrix import EvalConfig, MatrixProgress, expand, run_eval
    from mlsbench_env.scale.store import ResultsStore

    env: dict = {"sandbox": sandbox, "test_budget": test_budget, "max_steps": max_steps}
    env["compute_budget_s"] = compute_budget
    if final_seeds:
        env["final_seeds"] = [int(s) for s in final_seeds.split(",")]
    try:
        cfg = EvalConfig(
            agents=_split(agents),
            tasks=_split(tasks),
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
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
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
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("\ninterrupted; rerun the same command to resume")
        raise typer.Exit(130) from None
    console.print(
        f"eval {summary.eval_id}: {summary.done} done, {summary.skipped} finished before, "
        f"{summary.failed} failed, {summary.retried} retried, {summary.wall_s:.0f} s. "
        f"See: mlsbench report --store {cfg.store}"
    )
    raise typer.Exit(1 if summary.failed else 0)


@app.command("report", cls=_ListOptions)
def report_cmd(
    store: Annotated[str, typer.Option(help="SQLite results store.")] = "runs/results.sqlite",
    out: Annotated[str | None, typer.Option(help="Write HTML, PNG, CSV and JSON here.")] = None,
    tasks: Annotated[list[str] | None, typer.Option(help="Only these task ids.")] = None,
    agents: Annotated[list[str] | None, typer.Option(help="Only these agents.")] = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="Two agents to compare (default: every pair).")
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="Another report.json: say whether they are comparable.")
    ] = None,
    plots: bool = True,
):
    """Leaderboard, per-task tables, paired comparisons; files with --out."""
    from pathlib import Path

    from mlsbench_env.analysis.report import (
        comparable,
        render_terminal,
        report_from_store,
        write_report,
    )
    from mlsbench_env.scale.store import ResultsStore

    pair = _split(compare)
    if pair and len(pair) != 2:
        console.print(f"[red]error:[/red] --compare takes two agents, got {pair}")
        raise typer.Exit(2)
    if not Path(store).is_file():
        console.print(f"[red]error:[/red] no results store at {store} (run `mlsbench eval`)")
        raise typer.Exit(2)
    try:
        rep = report_from_store(
            ResultsStore(store),
            tasks=_split(tasks) or None,
            agents=_split(agents) or None,
            compare=tuple(pair) if pair else None,
        )
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    render_terminal(rep, console)
    if out:
        files = write_report(rep, out, plots=plots)
        console.print(f"wrote {len(files)} files; open {Path(out) / 'index.html'}")
    if against:
        why = comparable(rep.to_json(), json.loads(Path(against).read_text()))
        console.print("comparable with " + against if not why else "[yellow]not comparable:[/]")
        for w in why:
            console.print(f"  {w}")


@app.command()
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
        console.print("[red]error:[/red] give run folders, or --store with --all")
        raise typer.Exit(2)
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


# ----------------------------------------------------------------------- serve, export (RL)
@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface; beyond localhost a token is required.")] = (
        "127.0.0.1"
    ),
    port: int = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MLSBENCH_SERVER_TOKEN",
            help="Bearer token clients must send (generated and printed when the host is not "
            "localhost and none is given).",
        ),
    ] = None,
    runs_dir: Annotated[str, typer.Option(help="Where episode trajectories go.")] = "runs",
    work_dir: Annotated[str | None, typer.Option(help="Where episode workspaces live.")] = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="Also serve this task folder (repeatable).")
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option(help="Close sessions idle this many seconds (sandbox cleaned up).")
    ] = 900.0,
    max_sessions: int = 256,
    max_live: Annotated[
        int | None, typer.Option(help="Episodes holding a sandbox at once; more resets queue.")
    ] = None,
    max_experiments: Annotated[
        int | None, typer.Option(help="Sandbox commands at once (default: one per CPU core).")
    ] = None,
    ramp_per_s: Annotated[float, typer.Option(help="Episode starts per second (ramp).")] = 4.0,
    max_body_bytes: int = 2 << 20,
    protocol: Annotated[
        str,
        typer.Option(
            help="mlsbench: this package's JSON API (RemoteEnv); openenv: an OpenEnv server "
            "(WebSocket /ws; pip install 'mlsbench-env[openenv]'), see docs/openenv.md.",
        ),
    ] = "mlsbench",
):
    """Serve episodes over HTTP (create/reset/step/close; OpenAPI at /docs) for remote trainers;
    mlsbench_env.scale.client.RemoteEnv is the matching gymnasium env."""
    import secrets

    from mlsbench_env.scale.server import ServerConfig, needs_token, serve, task_folders

    if protocol not in ("mlsbench", "openenv"):
        console.print(f"[red]error:[/red] unknown protocol {protocol!r}; known: mlsbench, openenv")
        raise typer.Exit(2)

    if needs_token(host) and not token:
        token = secrets.token_urlsafe(24)
        console.print(f"bound beyond localhost: clients must send 'Authorization: Bearer {token}'")
    try:
        cfg = ServerConfig(
            host=host,
            port=port,
            token=token,
            idle_timeout_s=idle_timeout,
            max_sessions=max_sessions,
            max_body_bytes=max_body_bytes,
            runs_dir=runs_dir,
            work_dir=work_dir,
            tasks=task_folders(task or []),
            max_live=max_live,
            max_experiments=max_experiments,
            ramp_per_s=ramp_per_s or None,
        )
        if protocol == "openenv":
            from mlsbench_env.integrations.openenv_server import serve
        console.print(f"mlsbench env server ({protocol}) on http://{host}:{port} (API docs: /docs)")
        serve(cfg)
    except MLSBenchError as e:
        from rich.markup import escape  # the message names extras in brackets

        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


@app.command("export")
def export_cmd(
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
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    skipped = ", ".join(f"{n} {why}" for why, n in result.skipped.items()) or "none"
    console.print(
        f"wrote {len(result.episodes)} episode(s) to {result.data_file} (skipped: {skipped}); "
        f"dataset card {result.card}"
    )


images_app = typer.Typer(no_args_is_help=True, help="Sandbox images of the docker backend.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox containers and devices.")
app.add_typer(images_app, name="images")
app.add_typer(sandbox_app, name="sandbox")


@images_app.command("build")
def images_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if the recipe is unchanged.")] = False,
):
    """Build the sandbox images from sandbox/ where the recipe changed (no registry pulls)."""
    from mlsbench_env.sandbox.docker import images

    try:
        tag = images.build(force=force, log=lambda m: console.print(m, markup=False))
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"sandbox image: {tag}")


@images_app.command("list")
def images_list(
    prune: Annotated[bool, typer.Option(help="Remove images of older recipes.")] = False,
):
    """List mlsbench images; the current recipe's are marked."""
    from mlsbench_env.sandbox.docker import images

    try:
        for row in images.listing():
            mark = "[green]current[/green]" if row["current"] else "stale"
            console.print(f"{row['tag']}  {row['size_mb']:.0f} MB  {mark}")
        if prune:
            for tag in images.remove_stale():
                console.print(f"removed {tag}")
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None


@sandbox_app.command("gc")
def sandbox_gc(
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every mlsbench container, live ones too.")
    ] = False,
):
    """Remove leftover sandbox containers (their process is gone, or they stopped)."""
    try:
        from mlsbench_env.sandbox.docker import gc
    except ImportError:
        console.print(
            "[red]error:[/red] install the docker SDK: pip install 'mlsbench-env[docker]'"
        )
        raise typer.Exit(1) from None
    try:
        removed = gc(everything=all_)
    except MLSBenchError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    console.print(f"removed {len(removed)} container(s)" + "".join(f" {c}" for c in removed))


@sandbox_app.command("info")
def sandbox_info():
    """The docker engine, the sandbox image the current recipe needs, and this host's GPUs."""
    from mlsbench_env.sandbox.docker import images
    from mlsbench_env.sandbox.gpus import describe

    console.print(describe())
    try:
        from mlsbench_env.sandbox.docker import LABEL, client

        api = client().api
        version = api.version()
        console.print(f"engine: Docker {version.get('Version')} (API {version.get('ApiVersion')})")
        tag = images.sandbox_tag()
        built = "built" if images.exists(tag) else "not built: run `mlsbench images build`"
        console.print(f"image: {tag} ({built})")
        running = api.containers(filters={"label": LABEL})
        console.print(f"sandbox containers running: {len(running)}")
    except (ImportError, MLSBenchError) as e:
        console.print(f"engine: unavailable ({e})")


def main():  # pragma: no cover
    sys.exit(app())

