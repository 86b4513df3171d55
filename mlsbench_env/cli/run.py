"""`mlsbench run` and `play`: one whole episode by an agent (a baseline's edit, an LLM agent from
a YAML file, a resumed run) or by a person at the terminal."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlsbench_env.cli.app import (
    FinalSeeds,
    Protocol,
    console,
    fail,
    load_or_exit,
    parse_seeds,
    print_run,
)
from mlsbench_env.errors import MLSBenchError


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
    final_seeds: FinalSeeds = None,
    protocol: Protocol = None,
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
    from rich.markup import escape

    from mlsbench_env.agent import make_agent, summarize
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.env.protocol import with_agent_defaults
    from mlsbench_env.episode import env_defaults, run_episode

    overrides = list(set_ or [])
    overrides += [f"model.name={model}"] if model else []
    overrides += [f"model.base_url={base_url}"] if base_url else []
    opts: dict = {}
    extra: tuple[dict, ...] = ()
    try:
        spec, replay = agent, None
        if resume:
            spec, opts, task, seed, replay = _resumed(resume, agent, task, seed, overrides)
            extra = ({"type": "resumed_from", "run_dir": str(resume)},)
        if not task or not spec:
            fail("give --task and --agent (or --resume RUN_DIR)")
        t = load_or_exit(task)
        llm = not (isinstance(spec, str) and spec.startswith("baseline:"))
        options: dict = {"model": replay} if replay else {}
        if llm:
            options |= {
                "on_step": lambda i, action, obs, info, totals: console.print(
                    f"[bold]step {i}[/bold] {escape(summarize(action, obs, info, totals))}"
                ),
                "on_note": lambda m: console.print(f"  [dim]{escape(m)}[/dim]"),
            }
        # a resumed run's config has its overrides applied already
        a = make_agent(spec, t, overrides=overrides if llm and not resume else (), **options)
    except MLSBenchError as e:
        fail(e)
    if protocol:
        opts["protocol"] = protocol
    try:
        opts = with_agent_defaults(opts, env_defaults(a))
        opts.setdefault("sandbox", sandbox)
        opts.update(runs_dir=runs_dir, agent_name=a.name, submit_on_truncation=score_unsubmitted)
        if final_seeds:
            opts["final_seeds"] = parse_seeds(final_seeds)
        env = ResearchEnv(t, **opts)
    except (MLSBenchError, ValueError) as e:  # an unknown preset, an option it fixes
        fail(e)
    env.progress = print_run
    model_name = getattr(getattr(a, "model", None), "name", None)
    preset = "" if env.config.protocol == "default" else f", protocol {env.config.protocol}"
    console.print(
        f"Running {a.name}{f' ({model_name})' if model_name else ''} on {t.id} "
        f"(seed {seed}{preset}) ..."
    )
    try:
        result = run_episode(
            env,
            a,
            seed=seed,
            on_step=None if llm else _baseline_step,
            score_unsubmitted=score_unsubmitted,
            extra_records=extra,
        )
    except KeyboardInterrupt:
        env.close()
        where = env.run_dir or "(no run folder)"
        console.print(f"\ninterrupted; continue with: mlsbench run --resume {where}")
        raise typer.Exit(130) from None
    env.close()
    if tot := result.totals:
        console.print(
            f"Agent exit status: {result.status}; {tot['model_calls']} model calls, "
            f"{tot['input_tokens'] + tot['cached_input_tokens']} input "
            f"({tot['cached_input_tokens']} cached) / {tot['output_tokens']} output tokens"
            f"{' (some estimated)' if tot['estimated'] else ''}, ${tot['cost_usd']:.4f}"
        )
    scored = "not_submitted" in result.final_info
    if result.terminated or result.truncated or scored:
        _print_result(result)
    if not (result.terminated or result.truncated) and result.run_dir:
        what = "Not submitted" if scored else "No final evaluation"
        console.print(f"{what}; continue with: mlsbench run --resume {result.run_dir}")


def _baseline_step(i, action, obs, info) -> None:
    tool = action.get("tool") if isinstance(action, dict) else "?"
    console.print(
        f"[bold]step {i}[/bold] {tool}: {'ok' if info.get('ok') else 'failed'} | {info['budget']}"
    )
    if tool == "submit":
        console.print("  final evaluation done")


def _resumed(resume: str, agent, task, seed, overrides):
    """(agent config, env options, task, seed, model) to go on with a saved run: the model
    replays its recorded actions, then the config's model takes over."""
    from mlsbench_env.agent import ReplayModel, load_config, make_model, saved_run

    header, saved = saved_run(resume)
    source = agent or saved
    if source is None:
        fail(f"{resume} has no agent config; give --agent")
    cfg = load_config(source, overrides)
    # the saved episode's env options, but this run's folders and name
    mine = ("runs_dir", "work_dir", "agent_name")
    opts = {k: v for k, v in (header.get("config") or {}).items() if k not in mine}
    replay = ReplayModel.from_trajectory(
        resume, then=make_model(cfg.model, cfg.retry), action_format=cfg.model.action_format
    )
    return cfg, opts, task or header.get("task"), header.get("seed", seed), replay


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


def play(
    task: Annotated[str, typer.Option(help="Task id or folder.")],
    seed: int = 0,
    sandbox: str = "local",
    runs_dir: str = "runs",
):
    """Play an episode in the terminal: type JSON actions or `tool key=value ...`."""
    from mlsbench_env.env import ResearchEnv
    from mlsbench_env.errors import ActionError
    from mlsbench_env.tools import parse_short_form

    env = ResearchEnv(load_or_exit(task), sandbox=sandbox, runs_dir=runs_dir, agent_name="human")
    env.progress = print_run
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
