"""Leaderboards from the results store: tables, confidence intervals, paired comparisons,
plots, one static HTML page, CSV/JSON exports and a terminal rendering (``mlsbench report``).

What counts:

- An episode's points are its final score; an episode that ended without a final evaluation
  (no submission, a budget ran out, the model failed) scores 0, because the agent produced
  nothing scorable. Episodes of uncalibrated tasks (no anchors) are left out with a warning.
- Per task and agent: the mean over episodes (seeds) with a 95% Student-t interval.
- The leaderboard has MLS-Bench's shape: per domain, the agent's first-test score (vanilla),
  its final score and the strongest baseline's score (the ``baseline:strongest`` rows where the
  store has them; otherwise 50, which the reference baseline scores by construction); a domain's
  value is the mean over its tasks, ``overall`` the mean over domains. Intervals of domain and
  overall means come from a bootstrap that resamples episodes within each task.
- Paired comparison of two agents: the episodes they share (same task, seed and env options);
  mean difference with a bootstrap interval, wins/losses/ties and a two-sided sign test.
- Comparability: every row records the task version, task and anchors hashes and the image
  digest; the report lists them per task and hashes them into one key, and says when a task's
  rows mix hashes or differ from the task as it is today. Two reports are comparable when
  their keys match (``comparable``).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

BOOTSTRAP = 2000
# two-sided 95% Student-t quantiles by degrees of freedom (1..30); 1.96 beyond
_T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]
STRONGEST = "baseline:strongest"


def t95(df: int) -> float:
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval (the interval collapses to the mean for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value (ties dropped before)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * p)


def points(row: dict) -> float | None:
    """An episode's points (see the module docstring); None: left out (uncalibrated task)."""
    if row.get("score") is not None:
        return float(row["score"])
    if (row.get("score_reason") or "").startswith("uncalibrated"):
        return None
    return 0.0


@dataclass
class Report:
    agents: list[str]
    domains: list[str]
    leaderboard: list[dict]  # one per agent
    tasks: list[dict]  # one per task x agent
    paired: list[dict]
    fingerprint: dict
    episodes: list[dict] = field(repr=False, default_factory=list)
    failed: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # research, competition: rows side by side

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("episodes")
        return d


def _labels(rows: list[dict]) -> dict[str, str]:
    """agent_hash -> display label (the config's name; with the hash when names collide)."""
    by_label = defaultdict(set)
    for r in rows:
        by_label[r["agent"]].add(r["agent_hash"])
    return {
        h: label if len(hashes) == 1 else f"{label}@{h[:6]}"
        for label, hashes in by_label.items()
        for h in hashes
    }


def build_report(
    rows: list[dict],
    failed: list[dict] = (),
    *,
    compare: tuple[str, str] | None = None,
    today: dict[str, dict] | None = None,
    seed: int = 0,
) -> Report:
    """The report of the store's ``ok`` rows (and its ``failed`` ones, listed). ``today`` maps
    task ids to their current hashes (``current_hashes``) for the comparability check."""
    notes = []
    rng = np.random.default_rng(seed)
    scored = [r for r in rows if points(r) is not None]
    label = _labels(scored + list(failed))
    eps = [{**r, "label": label[r["agent_hash"]], "points": points(r)} for r in scored]
    skipped = len(rows) - len(eps)
    if skipped:
        notes.append(f"{skipped} episode(s) of uncalibrated tasks left out (no anchors)")
    agents = list(dict.fromkeys(e["label"] for e in eps))
    domain_of = {e["task"]: e.get("domain") or "other" for e in eps}
    domains = sorted(set(domain_of.values()))
    kind_of = {e["task"]: e.get("task_kind") or "research" for e in eps}
    kinds = sorted(set(kind_of.values()), key=lambda k: (k != "research", k))
    cell = defaultdict(list)  # (task, agent) -> episodes
    for e in eps:
        cell[(e["task"], e["label"])].append(e)

    task_rows = [_task_row(task, agent, group) for (task, agent), group in cell.items()]
    task_rows.sort(key=lambda t: (domain_of[t["task"]], t["task"], agents.index(t["agent"])))
    base = {t["task"]: t["score"] for t in task_rows if t["agent"] == STRONGEST}

    leaderboard = []
    for agent in agents:
        tasks = sorted(t for (t, a) in cell if a == agent)
        per_domain = {}
        for d in domains + ["overall"]:
            mine = [t for t in tasks if d == "overall" or domain_of[t] == d]
            if not mine:
                continue
            per_domain[d] = _domain_entry(agent, mine, cell, domain_of, base, rng)
        per_kind = {}
        for k in kinds:
            mine = [t for t in tasks if kind_of[t] == k]
            if mine:
                per_kind[k] = _domain_entry(agent, mine, cell, domain_of, base, rng)
                if k == "competition":
                    per_kind[k].update(_medal_rates([e for t in mine for e in cell[(t, agent)]]))
        played = [e for t in tasks for e in cell[(t, agent)]]
        leaderboard.append(
            {
                "agent": agent,
                "kinds": per_kind,
                "tasks": len(tasks),
                "episodes": len(played),
                # episodes the agent did not submit (limits, errors, budgets): scored on their
                # last code when the eval ran with score_unsubmitted (the default), else 0
                "not_submitted": sum(e.get("exit_status") != "submitted" for e in played)
                / len(played),
                "cost_usd": sum(e["cost_usd"] or 0.0 for t in tasks for e in cell[(t, agent)]),
                "domains": per_domain,
            }
        )
    leaderboard.sort(key=lambda r: -r["domains"]["overall"]["score"])
    all_tasks = {t for t, _ in cell}
    for row in leaderboard:
        if row["tasks"] < len(all_tasks):
            notes.append(
                f"{row['agent']} ran {row['tasks']} of {len(all_tasks)} tasks: its domain and "
                "overall means are over those only"
            )
    pairs = [compare] if compare else _default_pairs(agents)
    paired = [_paired(a, b, eps, rng) for a, b in pairs if a in agents and b in agents]
    if compare and not paired:
        notes.append(f"cannot compare {compare}: known agents are {agents}")
    fp = fingerprint(eps, today)
    for task, f in fp["tasks"].items():
        notes += [f"{task}: {w}" for w in f["warnings"]]
    failed_rows = [
        {
            "task": r["task"],
            "agent": label.get(r["agent_hash"], r["agent"]),
            "seed": r["seed"],
            "attempts": r.get("attempts"),
            "error": (r.get("error") or "").splitlines()[0][:200],
        }
        for r in failed
    ]
    return Report(
        agents, domains, leaderboard, task_rows, paired, fp, eps, failed_rows, notes, kinds
    )


def _task_row(task: str, agent: str, group: list[dict]) -> dict:
    pts = [e["points"] for e in group]
    mean, lo, hi = mean_ci(pts)

    def avg(key):
        vals = [e[key] for e in group if e.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    settings = defaultdict(list)
    for e in group:
        for k, v in (e.get("setting_scores") or {}).items():
            settings[k].append(v)
    return {
        "task": task,
        "domain": group[0].get("domain") or "other",
        "kind": group[0].get("task_kind") or "research",
        **(_medal_rates(group) if group[0].get("task_kind") == "competition" else {}),
        "agent": agent,
        "n": len(group),
        "score": mean,
        "ci_lo": lo,
        "ci_hi": hi,
        "vanilla": avg("vanilla_score"),
        "no_submission": sum(1 for e in group if e.get("score") is None),
        "steps": avg("steps"),
        "tests": avg("tests_used"),
        "tokens": avg("input_tokens") + (avg("output_tokens") or 0)
        if avg("input_tokens") is not None
        else None,
        "cost_usd": avg("cost_usd"),
        "compute_s": avg("compute_s"),
        "wall_s": avg("wall_s"),
        "tamper_events": sum(e.get("tamper_events") or 0 for e in group),
        "setting_scores": {k: sum(v) / len(v) for k, v in settings.items()},
    }


def _medal_rates(group: list[dict]) -> dict:
    """MLE-bench's headline numbers: the share of episodes winning each medal, and any medal."""
    n = len(group) or 1
    rates = {m: sum(e.get("medal") == m for e in group) / n for m in ("gold", "silver", "bronze")}
    return {"medals": rates, "any_medal": sum(rates.values())}


def _domain_entry(agent, tasks, cell, domain_of, base, rng) -> dict:
    """Mean over tasks (by domain for ``overall``: mean of domain means), bootstrap CI."""

    def combine(task_means: dict[str, float]) -> float:
        by_d = defaultdict(list)
        for t, v in task_means.items():
            by_d[domain_of[t]].append(v)
        return float(np.mean([np.mean(v) for v in by_d.values()]))

    pts = {t: np.array([e["points"] for e in cell[(t, agent)]]) for t in tasks}
    score = combine({t: p.mean() for t, p in pts.items()})
    draws = {t: rng.integers(0, len(p), size=(BOOTSTRAP, len(p))) for t, p in pts.items()}
    means = {t: p[draws[t]].mean(axis=1) for t, p in pts.items()}
    by_d = defaultdict(list)
    for t in tasks:
        by_d[domain_of[t]].append(means[t])
    boots = np.mean([np.mean(v, axis=0) for v in by_d.values()], axis=0)
    vanilla = {
        t: np.mean(v)
        for t in tasks
        if (
            v := [
                e["vanilla_score"] for e in cell[(t, agent)] if e.get("vanilla_score") is not None
            ]
        )
    }
    return {
        "score": score,
        "ci_lo": float(np.percentile(boots, 2.5)),
        "ci_hi": float(np.percentile(boots, 97.5)),
        "vanilla": combine(vanilla) if vanilla else None,
        "baseline": combine({t: base.get(t, 50.0) for t in tasks}),
        "baseline_measured": all(t in base for t in tasks),
        "tasks": len(tasks),
    }


def _default_pairs(agents: list[str]) -> list[tuple[str, str]]:
    """Every pair of agents, in leaderboard order of appearance (at most 10 agents)."""
    a = agents[:10]
    return [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]


def _paired(a: str, b: str, eps: list[dict], rng) -> dict:
    key = lambda e: (e["task"], e["seed"], e.get("options_hash"))  # noqa: E731
    pa = {key(e): e["points"] for e in eps if e["label"] == a}
    pb = {key(e): e["points"] for e in eps if e["label"] == b}
    shared = sorted(set(pa) & set(pb), key=str)
    d = np.array([pa[k] - pb[k] for k in shared])
    out = {"a": a, "b": b, "n": len(shared), "tasks": len({k[0] for k in shared})}
    if not len(d):
        return {
            **out,
            "mean_diff": None,
            "ci_lo": None,
            "ci_hi": None,
            "wins": 0,
            "losses": 0,
            "ties": 0,
            "p_sign": None,
        }
    boots = d[rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))].mean(axis=1)
    wins, losses = int((d > 1e-9).sum()), int((d < -1e-9).sum())
    return {
        **out,
        "mean_diff": float(d.mean()),
        "ci_lo": float(np.percentile(boots, 2.5)),
        "ci_hi": float(np.percentile(boots, 97.5)),
        "wins": wins,
        "losses": losses,
        "ties": len(d) - wins - losses,
        "p_sign": sign_test(wins, losses),
    }


# ---------------------------------------------------------------------------------- comparability
def current_hashes(task_ids) -> dict[str, dict]:
    """Today's version and hashes of the tasks that still load."""
    from mlsbench_env.errors import MLSBenchError
    from mlsbench_env.spec import load_task

    out = {}
    for tid in task_ids:
        try:
            t = load_task(tid)
        except MLSBenchError:
            continue
        fresh = type(t).content_hash.__wrapped__  # uncached: the files may have changed
        anchors = fresh(t, "anchors.json") if (t.root / "anchors.json").exists() else None
        out[tid] = {"version": t.spec.version, "task_hash": fresh(t), "anchors_hash": anchors}
    return out


def fingerprint(eps: list[dict], today: dict[str, dict] | None = None) -> dict:
    """Per task: versions, task/anchors hashes and image digests of the rows; one key for all."""
    tasks = {}
    for task in sorted({e["task"] for e in eps}):
        mine = [e for e in eps if e["task"] == task]
        f = {
            k: sorted({str(e.get(col)) for e in mine})
            for k, col in (
                ("versions", "task_version"),
                ("task_hashes", "task_hash"),
                ("anchors_hashes", "anchors_hash"),
                ("image_digests", "image_digest"),
                ("isolation", "isolation"),
                ("agent_isolation", "agent_isolation"),
            )
        }
        w = []
        for k in ("versions", "task_hashes", "anchors_hashes", "isolation", "agent_isolation"):
            if len(f[k]) > 1:
                w.append(f"rows mix {k.replace('_', ' ')} {f[k]}: not all comparable")
        now = (today or {}).get(task)
        if now:
            if [str(now["task_hash"])] != f["task_hashes"]:
                w.append("the task changed since these rows were recorded (`mlsbench rescore`)")
            if [str(now["anchors_hash"])] != f["anchors_hashes"]:
                w.append("the anchors changed since these rows were recorded (`mlsbench rescore`)")
        tasks[task] = {**f, "warnings": w}
    body = json.dumps(
        {t: [f["versions"], f["task_hashes"], f["anchors_hashes"]] for t, f in tasks.items()},
        sort_keys=True,
    )
    return {"key": hashlib.sha256(body.encode()).hexdigest()[:16], "tasks": tasks}


def comparable(a: dict, b: dict) -> list[str]:
    """Why two reports (their ``report.json``) are not comparable; empty when they are."""
    fa, fb = a["fingerprint"]["tasks"], b["fingerprint"]["tasks"]
    out = []
    for t in sorted(set(fa) | set(fb)):
        if t not in fa or t not in fb:
            out.append(f"{t}: only in {'the first' if t in fa else 'the second'} report")
            continue
        for k in ("versions", "task_hashes", "anchors_hashes"):
            if fa[t][k] != fb[t][k]:
                out.append(f"{t}: {k.replace('_', ' ')} differ ({fa[t][k]} vs {fb[t][k]})")
    return out


# ---------------------------------------------------------------------------------- output
def _f(x, nd=1) -> str:
    return "" if x is None else f"{x:.{nd}f}"


def render_terminal(report: Report, console) -> None:
    """The leaderboard, per-task table and paired comparisons as rich tables."""
    from rich.markup import escape
    from rich.table import Table

    if not report.agents:
        console.print("No finished episodes in the store.")
        return
    lb = Table(title="Leaderboard (overall = mean over domains)")
    heads = ("agent", "domain", "vanilla", "score [95% CI]", "strongest baseline", "tasks")
    for c in (*heads, "not submitted"):
        lb.add_column(c, justify="left" if c in ("agent", "domain") else "right")
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
        kt = Table(title="By kind: research tasks and competitions side by side")
        for c in ("agent", "kind", "score [95% CI]", "any medal", "tasks"):
            kt.add_column(c, justify="left" if c in ("agent", "kind") else "right")
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
    tt = Table(title="Per task: mean ± 95% CI over seeds")
    heads = ("task", "agent", "n", "score", "vanilla", "steps/tests", "tokens", "$", "compute s")
    for c in heads:
        tt.add_column(c, justify="left" if c in ("task", "agent") else "right")
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
    if report.paired:
        pt = Table(title="Paired comparison A - B (same task, seed and options)")
        for c in ("A", "B", "pairs", "A - B [95% CI]", "W/L/T", "sign p"):
            pt.add_column(c, justify="left" if c in ("A", "B") else "right")
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


def render_html(report: Report, images: list[str]) -> str:
    """One static page (no scripts) holding the tables, the plots and links to the exports."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>mlsbench report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}"
        ".note{color:#8a5a00}img{max-width:100%;border:1px solid #eee}small{color:#666}",
        "</style></head><body><h1>mlsbench leaderboard</h1>",
        f"<p>{len(report.episodes)} episodes, {len(report.agents)} agents, "
        f"{len({t['task'] for t in report.tasks})} tasks. Comparability key "
        f"<code>{e(report.fingerprint['key'])}</code>.</p>",
    ]
    cols = report.domains + ["overall"]
    parts.append(
        "<h2>Leaderboard</h2><p><small>Per domain: vanilla (first test, visible settings) → agent "
        "final score [95% bootstrap CI] | strongest baseline. Overall = mean over domains."
        "</small></p><table><tr><th>agent</th>"
        + "".join(f"<th>{e(d)}</th>" for d in cols)
        + "<th>tasks</th><th>episodes</th><th>not submitted</th><th>cost $</th></tr>"
    )
    for row in report.leaderboard:
        tds = []
        for d in cols:
            x = row["domains"].get(d)
            tds.append(
                "<td>-</td>"
                if x is None
                else f"<td>{_f(x['vanilla'])} → <b>{_f(x['score'])}</b> "
                f"<small>[{_f(x['ci_lo'])}, {_f(x['ci_hi'])}]</small> | {_f(x['baseline'])}</td>"
            )
        parts.append(
            f"<tr><td>{e(row['agent'])}</td>{''.join(tds)}<td>{row['tasks']}</td>"
            f"<td>{row['episodes']}</td><td>{100 * row['not_submitted']:.0f}%</td>"
            f"<td>{row['cost_usd']:.2f}</td></tr>"
        )
    parts.append("</table>")
    if len(report.kinds) > 1 or "competition" in report.kinds:
        parts.append(
            "<h2>By kind</h2><table><tr><th>agent</th><th>kind</th><th>score [95% CI]</th>"
            "<th>any medal</th><th>tasks</th></tr>"
        )
        for row in report.leaderboard:
            for k, x in row["kinds"].items():
                medal = f"{100 * x['any_medal']:.0f}%" if "any_medal" in x else "-"
                parts.append(
                    f"<tr><td>{e(row['agent'])}</td><td>{e(k)}</td><td><b>{_f(x['score'])}</b> "
                    f"<small>[{_f(x['ci_lo'])}, {_f(x['ci_hi'])}]</small></td><td>{medal}</td>"
                    f"<td>{x['tasks']}</td></tr>"
                )
        parts.append("</table>")
    for img in images:
        parts.append(f"<h3>{e(img.removesuffix('.png').replace('_', ' '))}</h3>")
        parts.append(f"<img src='{e(img)}' alt='{e(img)}'>")
    heads = [
        "task",
        "agent",
        "n",
        "score ± CI",
        "vanilla",
        "steps",
        "tests",
        "tokens",
        "cost $",
        "compute s",
        "no submit",
    ]
    parts.append("<h2>Per task</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>")
    for t in report.tasks:
        vals = [
            t["task"],
            t["agent"],
            t["n"],
            f"{_f(t['score'])} ± {_f((t['ci_hi'] - t['ci_lo']) / 2)}",
            _f(t["vanilla"]),
            _f(t["steps"]),
            _f(t["tests"]),
            _f(t["tokens"], 0),
            _f(t["cost_usd"], 3),
            _f(t["compute_s"]),
            t["no_submission"],
        ]
        parts.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in vals) + "</tr>")
    parts.append("</table>")
    if report.paired:
        parts.append(
            "<h2>Paired comparisons</h2><table><tr><th>A</th><th>B</th><th>pairs</th>"
            "<th>A − B [95% CI]</th><th>wins/losses/ties</th><th>sign test p</th></tr>"
        )
        for p in report.paired:
            diff = (
                "-"
                if p["mean_diff"] is None
                else f"{p['mean_diff']:+.1f} [{p['ci_lo']:+.1f}, {p['ci_hi']:+.1f}]"
            )
            pv = "-" if p["p_sign"] is None else f"{p['p_sign']:.3g}"
            parts.append(
                f"<tr><td>{e(p['a'])}</td><td>{e(p['b'])}</td><td>{p['n']}</td><td>{diff}</td>"
                f"<td>{p['wins']}/{p['losses']}/{p['ties']}</td><td>{pv}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<h2>Comparability</h2><table><tr><th>task</th><th>version</th>"
        "<th>task hash</th><th>anchors hash</th><th>image digest</th></tr>"
    )
    for task, f in report.fingerprint["tasks"].items():
        parts.append(
            f"<tr><td>{e(task)}</td>"
            + "".join(
                f"<td>{e(', '.join(f[k]))}</td>"
                for k in ("versions", "task_hashes", "anchors_hashes", "image_digests")
            )
            + "</tr>"
        )
    parts.append("</table>")
    for f in report.failed:
        parts.append(
            f"<p class='note'>failed: {e(f['task'])} × {e(f['agent'])} × seed {f['seed']}: "
            f"{e(f['error'])}</p>"
        )
    for w in report.warnings:
        parts.append(f"<p class='note'>note: {e(w)}</p>")
    links = ["report.json", "episodes.csv", "leaderboard.csv", "tasks.csv", "paired.csv"]
    parts.append("<h2>Data</h2><p>" + " · ".join(f"<a href='{n}'>{n}</a>" for n in links) + "</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def report_from_store(store, *, tasks=None, agents=None, compare=None) -> Report:
    """The report of a results store (filtered by task ids and agent labels/hashes)."""
    rows = store.episodes(status="ok", tasks=tasks, agents=agents)
    failed = store.episodes(status="failed", tasks=tasks, agents=agents)
    today = current_hashes({r["task"] for r in rows})
    return build_report(rows, failed, compare=compare, today=today)


# ---------------------------------------------------------------------------------- plots
def write_plots(report: Report, out: Path) -> dict[str, Path]:
    """score_by_domain.png, score_vs_cost.png, score_over_steps.png (matplotlib, no display)."""
    try:
        import matplotlib
    except ImportError:
        report.warnings.append(
            "no plots: matplotlib is missing (pip install 'mlsbench-env[scale]')"
        )
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colors = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(report.agents)}
    files = {}

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[name] = out / name

    # score by domain: bars with CI, vanilla as a marker, strongest baseline as a dash
    cols = report.domains + ["overall"]
    width = 0.8 / max(1, len(report.leaderboard))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cols) + 2), 4))
    for i, row in enumerate(report.leaderboard):
        xs, ys, lo, hi, van = [], [], [], [], []
        for j, d in enumerate(cols):
            x = row["domains"].get(d)
            if x is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(x["score"])
            lo.append(x["score"] - x["ci_lo"])
            hi.append(x["ci_hi"] - x["score"])
            van.append(x["vanilla"] if x["vanilla"] is not None else np.nan)
        ax.bar(
            xs, ys, width, yerr=[lo, hi], capsize=3, color=colors[row["agent"]], label=row["agent"]
        )
        ax.scatter(
            xs,
            van,
            marker="v",
            color="black",
            s=18,
            zorder=3,
            label="vanilla (first test)" if i == 0 else None,
        )
    for j, d in enumerate(cols):
        base = [r["domains"][d]["baseline"] for r in report.leaderboard if d in r["domains"]]
        if base:
            ax.hlines(
                base[0],
                j - 0.45,
                j + 0.45,
                colors="gray",
                linestyles="--",
                label="strongest baseline" if j == 0 else None,
            )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel("score (0 = scaffold, 50 = strongest baseline)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    save(fig, "score_by_domain.png")

    # score against what was spent: tokens, dollars, compute seconds (one point per task)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, name) in zip(
        axes,
        (
            ("tokens", "tokens per episode"),
            ("cost_usd", "US$ per episode"),
            ("compute_s", "compute seconds per episode"),
        ),
        strict=True,
    ):
        for a in report.agents:
            pts = [(t[key] or 0.0, t["score"]) for t in report.tasks if t["agent"] == a]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=colors[a], label=a, alpha=0.8)
        ax.set_xlabel(name)
    axes[0].set_ylabel("score")
    axes[0].legend(fontsize=8)
    save(fig, "score_vs_cost.png")

    # score over steps: best visible-settings test score so far, mean over episodes
    fig, ax = plt.subplots(figsize=(7, 4))
    for a in report.agents:
        mine = [e for e in report.episodes if e["label"] == a]
        curves = [e.get("score_curve") or [] for e in mine]
        last = max([e.get("steps") or 0 for e in mine] + [c[-1][0] for c in curves if c])
        if not any(curves):
            continue
        grid = np.full((len(curves), last), np.nan)
        for i, c in enumerate(curves):
            best = -np.inf
            for step, score in c:
                best = max(best, score)
                grid[i, step - 1 :] = best
        with warnings.catch_warnings():  # a step before any test is NaN, and not drawn
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(grid, axis=0)
        ax.step(np.arange(1, last + 1), mean, where="post", color=colors[a], label=a)
        steps = np.mean([e.get("steps") or last for e in mine])
        ax.scatter(
            [steps],
            [np.mean([e["points"] for e in mine])],
            color=colors[a],
            marker="*",
            s=90,
            zorder=3,
        )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("step (* = final score over all settings, at the mean episode length)")
    ax.set_ylabel("best test score so far (visible settings)")
    ax.legend(fontsize=8)
    save(fig, "score_over_steps.png")
    return files


__all__ = [
    "Report",
    "build_report",
    "comparable",
    "current_hashes",
    "fingerprint",
    "mean_ci",
    "points",
    "render_html",
    "render_terminal",
    "report_from_store",
    "sign_test",
    "write_plots",
    "write_report",
]
