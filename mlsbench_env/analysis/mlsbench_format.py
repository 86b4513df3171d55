"""MLS-Bench's records (``mlsbench report --format mlsbench``): per-task leaderboard CSVs in the
row format of MLS-Bench's ``leaderboard.csv``, the overall score as MLS-Bench computes it (the
mean over its 12 research areas), the mapping of our domains to those areas, and the reader.

One row per (model, test, seed): ``timestamp, model, is_final, seed``, then
``<metric>_<setting>`` for every setting (hidden ones too) and metric, ``<metric>_<setting>_std``,
``elapsed_<setting>``, as MLS-Bench's files have them; a ``seed=mean`` row (with the ``_std``
columns, sample standard deviation) follows every group of two or more seeds. Our own columns
come last: ``test`` (the test's number, or ``final``), ``episode`` (the episode's seed),
``score`` (our 0-100 task score of the row) and ``protocol``. Rows:

- ``<agent>``: its tests (``is_final`` false) and its final evaluation (``is_final`` true);
- ``vanilla:<agent>``: a copy of the agent's first test, as MLS-Bench writes them;
- ``baseline:<name>`` for every calibrated baseline and ``vanilla`` for the unchanged scaffold
  (calibration's ``default``), from the per-seed results ``anchors.json`` stores.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from mlsbench_env.errors import MLSBenchError

# MLS-Bench's 12 research areas (its tasks.jsonl ``benchmark_area``). Its site names the first
# nine; the last three are our reading of its site's categories (docs/evaluation.md).
AREAS = (
    "Language Models",
    "Vision and Generation",
    "Reinforcement Learning",
    "Robotics",
    "ML Systems",
    "AI for Science",
    "Optimization",
    "Time Series",
    "Causal Reasoning",
    "Graph Learning",
    "Security and Robustness",
    "Classical ML",
)
DOMAIN_AREAS = {  # task.yaml `domain` -> area (tests/test_mlsbench_format.py covers every one)
    "adversarial-robustness": "Security and Robustness",
    "causal-discovery": "Causal Reasoning",
    "classical-ml": "Classical ML",
    "climate-emulation": "AI for Science",
    "computational-biology": "AI for Science",
    "computer-vision": "Vision and Generation",
    # training dynamics (initialization); MLS-Bench's dl- tasks may sit in an area of their own
    # that our reading of its 12 areas lacks: to check against its tasks.jsonl
    "deep-learning": "Optimization",
    "generative-models": "Vision and Generation",
    "graph-learning": "Graph Learning",
    "language-models": "Language Models",
    "model-based control": "Robotics",
    "neural-rendering": "Vision and Generation",
    "optimization": "Optimization",
    "pde": "AI for Science",
    "reinforcement-learning": "Reinforcement Learning",
    "systems-kernels": "ML Systems",
    "tabular": "Classical ML",
    "text": "Language Models",
    "time-series": "Time Series",
    "vision": "Vision and Generation",
}
TASK_AREAS = {  # where the MLS-Bench task a task corresponds to sits in another area
    "diffusion-prior-inverse-solver": "AI for Science",  # ai4sci-inverse-diffusion-algo
    "diffusion-robot-action-sampling": "Robotics",  # nearest: robo-diffusion-policy
}
FIXED = ("timestamp", "model", "is_final", "seed")
OURS = ("test", "episode", "score", "protocol")


def area_of(task_id: str, domain: str | None) -> str:
    """The MLS-Bench area of a task (its own entry in TASK_AREAS, else its domain's)."""
    if task_id in TASK_AREAS:
        return TASK_AREAS[task_id]
    if domain not in DOMAIN_AREAS:
        raise MLSBenchError(
            f"{task_id}: domain {domain!r} has no MLS-Bench area; add it to DOMAIN_AREAS in "
            f"mlsbench_env/analysis/mlsbench_format.py (areas: {', '.join(AREAS)})"
        )
    return DOMAIN_AREAS[domain]


def area_means(task_scores: dict[str, tuple[str | None, float]]) -> dict:
    """MLS-Bench's overall score of one agent: ``{task: (domain, score)}`` -> the mean within
    each area, and ``overall``, the mean over the areas present (every area weighs the same)."""
    per_area = defaultdict(list)
    for task, (domain, score) in task_scores.items():
        per_area[area_of(task, domain)].append(score)
    areas = {a: sum(v) / len(v) for a, v in per_area.items()}
    overall = sum(areas.values()) / len(areas) if areas else None
    return {"areas": areas, "overall": overall, "tasks": len(task_scores)}


# ---------------------------------------------------------------------------------- rows
def _stamp(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


def _runs_rows(runs: Iterable[dict], base: dict) -> list[dict]:
    """One row per seed of ``runs`` (dicts with label, seed, metrics, wall_s), in the order
    the seeds first appear."""
    by_seed: dict = defaultdict(dict)
    for r in runs:
        row = by_seed[r.get("seed", "")]
        for name, v in (r.get("metrics") or {}).items():
            row[f"{name}_{r['label']}"] = v
        if r.get("wall_s") is not None:
            row[f"elapsed_{r['label']}"] = r["wall_s"]
    return [{**base, "seed": seed, **cols} for seed, cols in by_seed.items()]


def _with_mean(rows: list[dict], metric_cols: list[str], score: float | None = None) -> list:
    """The rows and, for two or more seeds, their ``seed=mean`` row (``_std``: sample std)."""
    if len(rows) < 2:
        return rows
    mean = {k: rows[0][k] for k in (*FIXED, *OURS) if k in rows[0]}
    mean.update(seed="mean", score=score)
    for col in metric_cols:
        vals = [r[col] for r in rows if _num(r.get(col)) is not None]
        if vals:
            mu = sum(vals) / len(vals)
            mean[col] = mu
            if len(vals) > 1:
                mean[f"{col}_std"] = math.sqrt(sum((v - mu) ** 2 for v in vals) / (len(vals) - 1))
    return [*rows, mean]


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def episode_rows(ep: dict, model: str, episode: str, dev_seed: int | None) -> list[tuple]:
    """An episode's groups of rows (per test, the final evaluation), each with its score, read
    from its trajectory."""
    from mlsbench_env.analysis.trajectories import linear_history

    path = Path(ep.get("trajectory") or "", "trajectory.jsonl")
    if not path.is_file():
        raise MLSBenchError(f"{ep['task']} / {model}: trajectory {path} is missing")
    records = linear_history(path)
    header = records[0] if records and records[0].get("type") == "header" else {}
    protocol = ep.get("protocol") or header.get("protocol") or "default"
    clock = header.get("time")
    out: list[tuple] = []
    first_test: list[dict] = []
    for rec in records:
        if rec.get("type") != "step":
            continue
        if clock is not None:
            clock += rec.get("duration_s") or 0.0  # the step's end: when its result existed
        info = rec.get("info") or {}
        base: dict = {"timestamp": _stamp(clock), "model": model, "episode": episode}
        base["protocol"] = protocol
        if info.get("final_runs"):
            rows = _runs_rows(info["final_runs"], {**base, "is_final": True, "test": "final"})
            per_seed = info.get("seed_scores") or {}
            for r in rows:
                r["score"] = per_seed.get(str(r["seed"]), per_seed.get(r["seed"]))
            out.append((rows, info.get("score")))
        elif rec.get("tool") == "test" and info.get("metrics") is not None:
            base.update(is_final=False, test=info.get("test"), score=info.get("score"))
            runs = info.get("runs") or [  # per-run details where the test records them
                {"label": label, "seed": dev_seed if dev_seed is not None else "", "metrics": m}
                for label, m in info["metrics"].items()
            ]
            rows = _runs_rows(runs, base)
            out.append((rows, info.get("score")))
            if not first_test:
                first_test = [{**r, "model": f"vanilla:{model}", "is_final": True} for r in rows]
                out.append((first_test, info.get("score")))
    return out


def calibration_rows(task, anchors: dict) -> list[tuple[list[dict], float | None]]:
    """``baseline:<name>`` and ``vanilla`` (the unchanged scaffold) rows from anchors.json,
    each seed scored with today's scoring."""
    from mlsbench_env.evaluation import SettingRun
    from mlsbench_env.scoring import score_runs

    seeds = anchors.get("seeds") or []
    out = []
    for name, per_setting in (anchors.get("results") or {}).items():
        runs = [
            SettingRun(label, seed, {m: v[i] for m, v in per_metric.items()}, None)
            for label, per_metric in per_setting.items()
            for i, seed in enumerate(seeds)
        ]
        model = "vanilla" if name == "default" else f"baseline:{name}"
        base = {"timestamp": anchors.get("created", ""), "model": model, "is_final": True}
        base.update(test="calibration", episode="", protocol="")
        rows = _runs_rows(
            ({"label": r.label, "seed": r.seed, "metrics": r.metrics} for r in runs), base
        )
        result = score_runs(task, runs, anchors)
        for r in rows:
            s = result.seed_scores.get(r["seed"])
            r["score"] = getattr(s, "value", None)
        out.append((rows, result.score))
    return out


def columns(task, rows: list[dict]) -> tuple[list[str], list[str]]:
    """(all columns, metric columns) in MLS-Bench's order: the task's settings and metrics
    (or those the rows hold, for a task that no longer loads)."""
    if task is not None:
        metric = [f"{m.name}_{s.label}" for s in task.spec.settings for m in task.spec.metrics]
        elapsed = [f"elapsed_{s.label}" for s in task.spec.settings]
    else:
        seen = [k for r in rows for k in r if k not in (*FIXED, *OURS)]
        seen = list(dict.fromkeys(seen))
        elapsed = [k for k in seen if k.startswith("elapsed_")]
        metric = [k for k in seen if k not in elapsed and not k.endswith("_std")]
    return [*FIXED, *metric, *(f"{c}_std" for c in metric), *elapsed, *OURS], metric


def task_table(task, episodes: list[dict], labels: dict[str, str]):
    """(columns, rows) of one task's leaderboard file."""
    dev = task.spec.seeds.dev if task is not None else None
    groups: list[tuple] = []
    n_seen: dict = defaultdict(int)
    for ep in sorted(episodes, key=lambda e: (labels[e["agent_hash"]], e["seed"])):
        model = labels[ep["agent_hash"]]
        n_seen[(model, ep["seed"])] += 1
        n = n_seen[(model, ep["seed"])]
        episode = str(ep["seed"]) if n == 1 else f"{ep['seed']}-{n}"
        groups += episode_rows(ep, model, episode, dev)
    anchors = task.anchors() if task is not None else None
    if anchors:
        groups += calibration_rows(task, anchors)
    cols, metric = columns(task, [r for rows, _ in groups for r in rows])
    table = [row for rows, score in groups for row in _with_mean(rows, metric, score)]
    return cols, table


def write_task_csv(path: Path, cols: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if _num(v) is None else v) for k, v in r.items()})
    return path


def write_mlsbench(rows: list[dict], out: str | Path, tasks: dict | None = None) -> dict:
    """Per-task CSVs and ``overall.csv`` for the store's ``ok`` rows ``rows``; ``tasks`` maps
    task ids to loaded tasks (others are loaded by id). Several protocols: one folder each.
    Returns ``{"files", "overall", "warnings"}``."""
    from mlsbench_env.analysis.report import _labels
    from mlsbench_env.spec import load_task

    out, tasks, warnings = Path(out), dict(tasks or {}), []
    labels = _labels(rows)
    by_protocol = defaultdict(list)
    for r in rows:
        by_protocol[r.get("protocol") or "default"].append(r)
    files, overall = [], []
    for protocol, mine in sorted(by_protocol.items()):
        folder = out if len(by_protocol) == 1 else out / protocol
        per_task = defaultdict(list)
        for r in mine:
            per_task[r["task"]].append(r)
        for tid, eps in sorted(per_task.items()):
            if tid not in tasks:
                try:
                    tasks[tid] = load_task(tid)
                except MLSBenchError as e:
                    tasks[tid] = None
                    why = str(e).splitlines()[0][:120]
                    warnings.append(f"{tid}: does not load ({why}); no baseline or vanilla rows")
            try:
                cols, table = task_table(tasks[tid], eps, labels)
            except MLSBenchError as e:
                warnings.append(str(e))
                continue
            files.append(write_task_csv(folder / f"{tid}.csv", cols, table))
        overall += _overall(mine, labels, protocol, warnings)
    if overall:
        cols = ["agent", "protocol", "overall", "areas", "tasks", *AREAS]
        files.append(write_task_csv(out / "overall.csv", cols, overall))
    return {"files": files, "overall": overall, "warnings": warnings}


def _overall(rows: list[dict], labels: dict, protocol: str, warnings: list) -> list[dict]:
    """Per agent: its research tasks' mean points, averaged within and then over areas."""
    from mlsbench_env.analysis.report import points

    cell: dict = defaultdict(list)
    domain = {}
    for r in rows:
        pts = points(r)
        if (r.get("task_kind") or "research") != "research" or pts is None:
            continue  # MLS-Bench has no competitions; uncalibrated tasks have no points
        cell[(labels[r["agent_hash"]], r["task"])].append(pts)
        domain[r["task"]] = r.get("domain")
    out = []
    for agent in dict.fromkeys(a for a, _ in cell):
        scores = {t: (domain[t], sum(v) / len(v)) for (a, t), v in cell.items() if a == agent}
        try:
            m = area_means(scores)
        except MLSBenchError as e:
            if str(e) not in warnings:
                warnings.append(str(e))
            continue
        row = {"agent": agent, "protocol": protocol, "overall": m["overall"]}
        out.append({**row, "areas": len(m["areas"]), "tasks": m["tasks"], **m["areas"]})
    return sorted(out, key=lambda r: -r["overall"])


# ---------------------------------------------------------------------------------- reader
def _cell(col: str, v: str):
    if v == "":
        return None
    if col == "is_final":
        return v == "True"
    if col in ("seed", "test"):
        return int(v) if v.lstrip("-").isdigit() else v  # seed=mean, test=final
    if col in ("model", "timestamp", "protocol", "episode"):
        return v
    return float(v)


def read_leaderboard(path: str | Path) -> list[dict]:
    """A leaderboard CSV's rows, typed: numbers as floats, empty cells as None, ``seed`` an
    int or ``mean``, ``is_final`` a bool."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in FIXED if c not in (reader.fieldnames or [])]
        if missing:
            raise MLSBenchError(f"{path}: not an MLS-Bench leaderboard (no {missing} columns)")
        return [{k: _cell(k, v) for k, v in row.items()} for row in reader]


def final_scores(rows: list[dict]) -> dict[tuple[str, str], float | None]:
    """``(model, episode) -> score`` of every final evaluation in a leaderboard's rows: its
    ``seed=mean`` row's, or its one seed's row's."""
    finals = defaultdict(list)
    for r in rows:
        if r["is_final"] and r.get("test") == "final":
            finals[(r["model"], r["episode"])].append(r)
    out = {}
    for key, mine in finals.items():
        mean = [r for r in mine if r["seed"] == "mean"]
        out[key] = (mean or mine)[0]["score"]
    return out


__all__ = [
    "AREAS",
    "DOMAIN_AREAS",
    "TASK_AREAS",
    "area_means",
    "area_of",
    "final_scores",
    "read_leaderboard",
    "task_table",
    "write_mlsbench",
]
