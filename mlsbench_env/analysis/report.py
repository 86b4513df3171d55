"""Leaderboards from the results store (``mlsbench report``): episodes grouped by task, agent,
domain and kind into a ``Report``, with paired comparisons and the comparability fingerprint.
The statistics are in ``stats``, the terminal tables, HTML page and files in ``render``, the
plots in ``plots``.

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
- Comparability: every row records the task version, task and anchors hashes, the image
  digest and the protocol preset; the report lists them per task and hashes them into one key,
  and says when a task's rows mix hashes or differ from the task as it is today. Two reports
  are comparable when their keys match (``comparable``). A report holds one protocol preset:
  rows of several are refused (``report_from_store(protocol=...)`` picks one); rows from
  before presets are ``default``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from mlsbench_env.analysis.stats import grouped_mean_ci, mean_ci, mean_over_groups, paired_stats
from mlsbench_env.errors import MLSBenchError

STRONGEST = "baseline:strongest"


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
    drift: dict[str, str] = field(default_factory=dict)
    """Per task, the calibration drift ``eval --check-drift`` recorded beside the store (one
    line, ``DriftReport.summary``)."""
    protocol: str = "default"  # the protocol preset of every row (env/protocol.py)

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
    failed: Sequence[dict] = (),
    *,
    compare: tuple[str, str] | None = None,
    today: dict[str, dict] | None = None,
    seed: int = 0,
) -> Report:
    """The report of the store's ``ok`` rows (and its ``failed`` ones, listed). ``today`` maps
    task ids to their current hashes (``current_hashes``) for the comparability check."""
    notes = []
    rng = np.random.default_rng(seed)
    protocol = one_protocol([*rows, *failed])
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
    rep = Report(
        agents, domains, leaderboard, task_rows, paired, fp, eps, failed_rows, notes, kinds
    )
    rep.protocol = protocol
    return rep


def protocol_of(row: dict) -> str:
    """A row's protocol preset (``default`` for rows from before presets)."""
    return row.get("protocol") or "default"


def one_protocol(rows: Sequence[dict]) -> str:
    """The one protocol preset of ``rows``; rows of several are refused: their scores follow
    different rules and never share a table."""
    found = sorted({protocol_of(r) for r in rows}) or ["default"]
    if len(found) > 1:
        raise MLSBenchError(
            f"the rows hold episodes of several protocol presets ({', '.join(found)}), whose "
            "scores are not comparable; report one at a time (mlsbench report --protocol NAME)"
        )
    return found[0]


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
    """Mean over tasks (for ``overall``: mean of domain means), bootstrap CI."""
    groups = [domain_of[t] for t in tasks]
    pts = [np.array([e["points"] for e in cell[(t, agent)]]) for t in tasks]
    score, lo, hi = grouped_mean_ci(pts, groups, rng)
    vanilla = {}
    for t in tasks:
        if v := [
            e["vanilla_score"] for e in cell[(t, agent)] if e.get("vanilla_score") is not None
        ]:
            vanilla[t] = np.mean(v)
    return {
        "score": score,
        "ci_lo": lo,
        "ci_hi": hi,
        "vanilla": float(mean_over_groups(list(vanilla.values()), [domain_of[t] for t in vanilla]))
        if vanilla
        else None,
        "baseline": float(mean_over_groups([base.get(t, 50.0) for t in tasks], groups)),
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
    return {**out, **paired_stats(d, rng)}


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
        f["protocols"] = sorted({protocol_of(e) for e in mine})
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
    # the protocol joins the key where it is not ours, so keys of default reports stay as they were
    body = json.dumps(
        {
            t: [f["versions"], f["task_hashes"], f["anchors_hashes"]]
            + ([f["protocols"]] if f["protocols"] != ["default"] else [])
            for t, f in tasks.items()
        },
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
        pa, pb = fa[t].get("protocols", ["default"]), fb[t].get("protocols", ["default"])
        if pa != pb:
            out.append(f"{t}: protocol presets differ ({pa} vs {pb})")
    return out


def report_from_store(store, *, tasks=None, agents=None, compare=None, protocol=None) -> Report:
    """The report of a results store (filtered by task ids, agent labels/hashes and protocol
    preset: needed where the store holds several), with the drift ``eval --check-drift`` saved
    beside it."""
    from mlsbench_env.analysis.drift import load_drift  # it loads the evaluation layer

    rows = store.episodes(status="ok", tasks=tasks, agents=agents)
    failed = store.episodes(status="failed", tasks=tasks, agents=agents)
    if protocol is not None:
        rows = [r for r in rows if protocol_of(r) == protocol]
        failed = [r for r in failed if protocol_of(r) == protocol]
    today = current_hashes({r["task"] for r in rows})
    report = build_report(rows, failed, compare=compare, today=today)
    drift = load_drift(store.path)
    report.drift = {t: drift[t].summary() for t in sorted({r["task"] for r in rows}) if t in drift}
    return report


__all__ = [
    "STRONGEST",
    "Report",
    "build_report",
    "comparable",
    "current_hashes",
    "fingerprint",
    "one_protocol",
    "points",
    "protocol_of",
    "report_from_store",
]
