"""The report's outputs: rich tables in the terminal, and a folder of files (``report.json``,
CSV exports, plots and ``index.html``, rendered from ``templates/report.html.j2``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jinja2

from mlsbench_env.analysis.plots import write_plots
from mlsbench_env.analysis.report import Report


def _f(x, nd=1) -> str:
    return "" if x is None else f"{x:.{nd}f}"


def _table(title: str, columns: tuple[str, ...]):
    """A rich table whose first two columns (the names) align left, the numbers right."""
    from rich.table import Table

    table = Table(title=title)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i < 2 else "right")
    return table


def render_terminal(report: Report, console) -> None:
    """The leaderboard, per-task table and paired comparisons as rich tables."""
    from rich.markup import escape

    if not report.agents:
        console.print("No finished episodes in the store.")
        return
    heads = ("agent", "domain", "vanilla", "score [95% CI]", "strongest baseline", "tasks")
    lb = _table("Leaderboard (overall = mean over domains)", (*heads, "not submitted"))
    for row in report.leaderboard:
        first = True
        for d in report.domains + ["overall"]:
            e = row["domains"].get(d)
            if e is None:
                continue
            lb.add_row(
                escape(row["agent"]) if first else "",
                escape(d) if d != "overall" else "[bold]overall[/bold]",
                _f(e["vanilla"]),
                f"[bold]{_f(e['score'])}[/bold] [{_f(e['ci_lo'])}, {_f(e['ci_hi'])}]",
                _f(e["baseline"]) + ("" if e["baseline_measured"] else "*"),
                str(e["tasks"]),
                f"{100 * row['not_submitted']:.0f}%" if first else "",
            )
            first = False
        lb.add_section()
    console.print(lb)
    console.print(
        "vanilla: the agent's first test (visible settings only); *: the strongest baseline "
        "was not run here: 50 by construction; not submitted: share of the agent's episodes "
        "that ended without a submit (scored on their last code)"
    )
    if len(report.kinds) > 1 or "competition" in report.kinds:
        kt = _table(
            "By kind: research tasks and competitions side by side",
            ("agent", "kind", "score [95% CI]", "any medal", "tasks"),
        )
        for row in report.leaderboard:
            for k, e in row["kinds"].items():
                medal = f"{100 * e['any_medal']:.0f}%" if "any_medal" in e else "-"
                kt.add_row(
                    escape(row["agent"]),
                    k,
                    f"{_f(e['score'])} [{_f(e['ci_lo'])}, {_f(e['ci_hi'])}]",
                    medal,
                    str(e["tasks"]),
                )
        console.print(kt)
        console.print(
            "any medal: share of competition episodes at or beyond the bronze threshold of the "
            "baseline pipelines' leaderboard (Kaggle's rules, as in MLE-bench)"
        )
    tt = _table(
        "Per task: mean ± 95% CI over seeds",
        ("task", "agent", "n", "score", "vanilla", "steps/tests", "tokens", "$", "compute s"),
    )
    for t in report.tasks:
        tt.add_row(
            escape(t["task"]),
            escape(t["agent"]),
            str(t["n"]),
            f"{_f(t['score'])} ± {_f((t['ci_hi'] - t['ci_lo']) / 2)}",
            _f(t["vanilla"]),
            f"{_f(t['steps'])}/{_f(t['tests'])}",
            _f(t["tokens"], 0),
            _f(t["cost_usd"], 2),
            _f(t["compute_s"], 0),
        )
    console.print(tt)
    for line in report.drift.values():  # each line starts with its task id
        console.print(f"calibration drift: {escape(line)}")
    if report.paired:
        pt = _table(
            "Paired comparison A - B (same task, seed and options)",
            ("A", "B", "pairs", "A - B [95% CI]", "W/L/T", "sign p"),
        )
        for p in report.paired:
            pt.add_row(
                escape(p["a"]),
                escape(p["b"]),
                str(p["n"]),
                "-"
                if p["mean_diff"] is None
                else f"{p['mean_diff']:+.1f} [{p['ci_lo']:+.1f}, {p['ci_hi']:+.1f}]",
                f"{p['wins']}/{p['losses']}/{p['ties']}",
                "-" if p["p_sign"] is None else f"{p['p_sign']:.3g}",
            )
        console.print(pt)
    no_sub = sum(t["no_submission"] for t in report.tasks)
    if no_sub:
        console.print(f"{no_sub} episode(s) ended without a final evaluation: scored 0")
    for f in report.failed:
        what = escape(f"{f['task']} x {f['agent']} x seed {f['seed']}: {f['error']}")
        console.print(f"[red]failed[/red] {what}")
    for w in report.warnings:
        console.print(f"[yellow]note:[/yellow] {escape(w)}")
    console.print(f"comparability key: {report.fingerprint['key']}")


EPISODE_CSV = (
    "task",
    "domain",
    "task_kind",
    "agent",
    "label",
    "agent_hash",
    "seed",
    "status",
    "exit_status",
    "score",
    "points",
    "score_spread",
    "vanilla_score",
    "medal",
    "steps",
    "tests_used",
    "model_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "wall_s",
    "compute_s",
    "tamper_events",
    "task_version",
    "task_hash",
    "anchors_hash",
    "image_digest",
    "sandbox",
    "options_hash",
    "cell_key",
    "trajectory",
)


def _csv(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()})
    return buf.getvalue()


def write_report(report: Report, out: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write CSV/JSON exports, PNG plots and ``index.html`` into ``out``; the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}

    def put(name, text):
        (out / name).write_text(text)
        files[name] = out / name

    put("report.json", json.dumps(report.to_json(), indent=1, default=str))
    put("episodes.csv", _csv(report.episodes, EPISODE_CSV))
    flat = [
        {"agent": r["agent"], "domain": d, **e}
        for r in report.leaderboard
        for d, e in r["domains"].items()
    ]
    put(
        "leaderboard.csv",
        _csv(
            flat,
            [
                "agent",
                "domain",
                "vanilla",
                "score",
                "ci_lo",
                "ci_hi",
                "baseline",
                "baseline_measured",
                "tasks",
            ],
        ),
    )
    put("tasks.csv", _csv(report.tasks, list(report.tasks[0]) if report.tasks else ["task"]))
    put(
        "paired.csv",
        _csv(
            report.paired,
            [
                "a",
                "b",
                "n",
                "tasks",
                "mean_diff",
                "ci_lo",
                "ci_hi",
                "wins",
                "losses",
                "ties",
                "p_sign",
            ],
        ),
    )
    if plots and report.agents:
        files.update(write_plots(report, out))
    put("index.html", render_html(report, [n for n in files if n.endswith(".png")]))
    return files


_PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_PAGES.filters["num"] = _f


def render_html(report: Report, images: list[str]) -> str:
    """One static page (no scripts) holding the tables, the plots and links to the exports."""
    return _PAGES.get_template("report.html.j2").render(
        report=report,
        images=images,
        cols=report.domains + ["overall"],
        n_tasks=len({t["task"] for t in report.tasks}),
    )


__all__ = ["EPISODE_CSV", "render_html", "render_terminal", "write_report"]
