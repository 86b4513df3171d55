"""The `mlsbench` typer app: the helpers and options its commands share, and the one place that
registers every command (the command modules import these helpers, so registration runs last)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from mlsbench_env.errors import MLSBenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Gym-style research-task environments for AI research agents.",
)
console = Console()

TaskArg = Annotated[str, typer.Argument(help="Task id (see `mlsbench list`) or a task folder.")]
FinalSeeds = Annotated[str | None, typer.Option(help="e.g. 0,1 (quick, not comparable)")]
Protocol = Annotated[
    str | None,
    typer.Option(
        help="Protocol preset: default | mlsbench-paper | mlsbench-lite | mlsbench-v3 "
        "(docs/protocols.md); default: the agent YAML's `protocol:`, else ours."
    ),
]


def fail(message: object, code: int = 2) -> NoReturn:
    """Print `error: message` and exit with `code` (2: a usage error, 1: the work failed)."""
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def load_or_exit(task: str):
    """The task of an id or folder; an unknown one exits 2 with the loader's message."""
    from mlsbench_env.spec import load_task

    try:
        return load_task(task)
    except MLSBenchError as e:
        fail(e)


def split_commas(values: list[str] | None) -> list[str] | None:
    """Callback of the list options: `--agents a,b` and `--agents a --agents b` both give [a, b]."""
    if values is None:
        return None
    return [v for item in values for v in item.split(",") if v]


def list_option(text: str):
    """An option taking several values, repeated (`--agents a --agents b`) or comma-separated
    (`--agents a,b`)."""
    return typer.Option(
        help=f"{text} Repeat the option or separate with commas.", callback=split_commas
    )


def parse_seeds(text: str | None) -> tuple[int, ...] | None:
    """`--final-seeds 0,1` as a tuple; None when not given."""
    return tuple(int(s) for s in text.split(",")) if text else None


def print_run(label: str, seed: int, run, prefix: str = "") -> None:
    """One line per finished setting run (the `progress` callback of envs and evaluations)."""
    status = "[red]failed[/red]" if run.error else "[green]ok[/green]"
    metrics = "" if run.error else " " + ", ".join(f"{k}={v:.4g}" for k, v in run.metrics.items())
    console.print(f"  {prefix}{label} seed {seed}: {status}{metrics} ({run.wall_s:.1f} s)")


@contextmanager
def run_progress(total: int, description: str) -> Iterator[Callable[..., None]]:
    """A progress bar over `total` setting runs, drawn on a terminal only (piped output stays a
    plain log); the callback it yields logs a finished run above the bar and advances it."""
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (*Progress.get_default_columns()[:2], MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        bar_id = bar.add_task(description, total=total)

        def advance(label: str, seed: int, run, prefix: str = "") -> None:
            print_run(label, seed, run, prefix)
            bar.advance(bar_id)

        yield advance


def _register() -> None:
    from mlsbench_env.cli import eval as eval_cmd
    from mlsbench_env.cli import report, run, sandbox, serve, tasks

    commands: list[tuple[str, Callable[..., Any]]] = [
        ("list", tasks.list_tasks),
        ("show", tasks.show),
        ("run", run.run),
        ("play", run.play),
        ("validate", tasks.validate),
        ("calibrate", tasks.calibrate),
        ("eval", eval_cmd.eval_matrix),
        ("report", report.report),
        ("rescore", report.rescore),
        ("serve", serve.serve),
        ("export", report.export),
    ]
    for name, command in commands:
        app.command(name)(command)
    app.add_typer(sandbox.images_app, name="images")
    app.add_typer(sandbox.sandbox_app, name="sandbox")


_register()
