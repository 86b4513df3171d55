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

    table = Table("domain", "visible settings", "hidden", "baselines", "budgets")
    table.columns.insert(0, Column("id", no_wrap=True))  # ids are what users copy: never cut
    for column in table.columns[1:]:
        column.overflow = "fold"
    for tid in builtin_task_ids():
        try:
            t = load_task(tid)
        except MLSBenchError as e:
            table.add_row(tid, "[red]invalid[/red]", str(e), "", "", "")
            continue
        b = t.spec.budgets
        table.add_row(
            tid,
            t.spec.domain,
            ", ".join(s.label for s in t.visible_settings),
            str(len(t.spec.settings) - len(t.visible_settings)),
            ", ".join(f"{n}*" if n == t.spec.reference_baseline else n for n in t.baseline_names),
            f"{b.tests} tests, {b.compute_s:.0f} s, {b.max_steps} steps",
        )
    console.print(table)
    console.print("* reference (strongest) baseline: 50 points")


@app.command()
def show(task: TaskArg):
    """Print the exact prompt the agent sees at reset."""
    from mlsbench_env.env import ResearchEnv

    env = ResearchEnv(_load(task), runs_dir=None)
    obs, _ = env.reset(seed=0)
    env.close()
    typer.echo(obs)


def _make_agent(task, agent: str):
    from mlsbench_env.runner import BaselineAgent

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
):
    """Play one whole episode with an agent and print the final score."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.runner import run_episode

    if resume or (agent and agent.endswith((".yaml", ".yml"))):
        overrides = list(set_ or [])
        overrides += [f"model.name={model}"] if model else []
        overrides += [f"model.base_url={base_url}"] if base_url else []
        seeds = tuple(int(s) for s in final_seeds.split(",")) if final_seeds else None
        result = _run_llm(task, agent, seed, sandbox, runs_dir, seeds, overrides, resume)
        if result.terminated or result.truncated:
            _print_result(result)
        elif result.run_dir:
            console.print(
                f"No final evaluation; continue with: mlsbench run --resume {result.run_dir}"
            )
        return
    if not task or not agent:
        console.print("[red]error:[/red] give --task and --agent (or --resume RUN_DIR)")
        raise typer.Exit(2)
    t = _load(task)
    a = _make_agent(t, agent)
    opts = {"sandbox": sandbox, "runs_dir": runs_dir, "agent_name": a.name}
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


def _run_llm(task, agent, seed, sandbox, runs_dir, final_seeds, overrides, resume):
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
    env = ResearchEnv(t, **env_opts)
    env.progress = _progress_printer()

    def on_step(i, action, obs, info, totals):
        console.print(f"[bold]step {i}[/bold] {escape(summarize(action, obs, info, totals))}")

    agent_ = LLMAgent(
        cfg, llm, on_step=on_step, on_note=lambda m: console.print(f"  [dim]{m}[/dim]")
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
    from mlsbench_env.calibration import validate as check
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
    from mlsbench_env.calibration import calibrate as measure
    from mlsbench_env.calibration import write_anchors

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


images_app = typer.Typer(no_args_is_help=True, help="Sandbox images of the docker backend.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox containers and devices.")
app.add_typer(images_app, name="images")
app.add_typer(sandbox_app, name="sandbox")


@images_app.command("build")
def images_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if the recipe is unchanged.")] = False,
):
    """Build the sandbox images from sandbox/ where the recipe changed (no registry pulls)."""
    from mlsbench_env import images

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
    from mlsbench_env import images

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
    from mlsbench_env import images
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


if __name__ == "__main__":  # pragma: no cover
    app()
