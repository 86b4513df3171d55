"""`mlsbench validate` and `mlsbench calibrate`: checking a task and measuring its anchors."""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import FinalResult, check_policy, final_evaluation, score_runs
from mlsbench_env.scoring import compute_anchors
from mlsbench_env.spec import Task
from mlsbench_env.trajectory import versions
from mlsbench_env.workspace import transplant


def validate(
    task: Task, *, run: bool = True, backend: str = "local", progress: Callable | None = None
) -> list[str]:
    """Problems with a loaded task (an empty list when it is fine)."""
    problems = []
    if not (task.root / "grader.py").is_file():
        problems.append(f"{task.root}/grader.py: missing (the trusted grader)")
    if len(task.spec.settings) < 3:
        problems.append("task.yaml: settings: a task needs 3+ settings")
    if len(task.spec.seeds.final) < 3:
        problems.append("task.yaml: seeds.final: the final evaluation needs 3+ seeds")
    for name in task.baseline_names:
        try:
            regions = task.baseline_regions(name)
        except MLSBenchError as e:
            problems.append(f"baseline {name}: {e}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            ranges = transplant(task, regions, {}, Path(tmp) / "repo", with_hidden=True)
            for v in check_policy(task, Path(tmp) / "repo", ranges):
                problems.append(f"baseline {name}: {v}")
    anchors = task.anchors()
    if anchors is None:
        problems.append("anchors.json: missing; run `mlsbench calibrate " + task.id + "`")
    else:
        for s in task.spec.settings:
            for m in task.spec.metrics:
                if m.name not in anchors.get("anchors", {}).get(s.label, {}):
                    problems.append(
                        f"anchors.json: no anchor for {s.label}/{m.name}; re-run calibrate"
                    )
    if run and not problems:
        result = final_evaluation(
            task, {}, {}, backend=backend, seeds=[task.spec.seeds.dev], progress=progress
        )
        for r in result.runs:
            if r.error:
                problems.append(
                    f"default scaffold, setting {r.label}: {r.error}\n{r.log_tail[-1500:]}"
                )
    return problems


def calibrate(
    task: Task,
    *,
    backend: str = "local",
    workers: int = 1,
    baselines: list[str] | None = None,
    progress: Callable[[str, str, int, object], None] | None = None,
) -> tuple[dict, dict[str, FinalResult]]:
    """Run default + every baseline over all settings x final seeds; write anchors.json."""
    names = baselines or task.baseline_names

    def one(name: str):
        cb = (lambda label, seed, run: progress(name, label, seed, run)) if progress else None
        return name, final_evaluation(
            task, task.baseline_regions(name), {}, backend=backend, anchors={}, progress=cb
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        finished = dict(pool.map(one, names))
    results: dict = {}
    for name, fr in finished.items():
        per = results.setdefault(name, {})
        for r in fr.runs:
            for m in task.spec.metrics:
                v = r.metrics.get(m.name) if r.metrics else None
                per.setdefault(r.label, {}).setdefault(m.name, []).append(
                    v if v is not None else math.nan
                )
        errors = [f"{r.label}/seed {r.seed}: {r.error}" for r in fr.runs if r.error]
        if errors:
            per["_errors"] = errors
    anchors = {
        "task": task.id,
        "version": task.spec.version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "seeds": list(task.spec.seeds.final),
        "reference_baseline": task.spec.reference_baseline,
        "results": {n: {k: v for k, v in r.items() if k != "_errors"} for n, r in results.items()},
        "errors": {n: r["_errors"] for n, r in results.items() if "_errors" in r},
        "anchors": compute_anchors(
            task, {n: {k: v for k, v in r.items() if k != "_errors"} for n, r in results.items()}
        ),
    }
    rescored = {n: score_runs(task, fr.runs, anchors) for n, fr in finished.items()}
    return anchors, rescored


def write_anchors(task: Task, anchors: dict) -> Path:
    path = task.root / "anchors.json"
    path.write_text(json.dumps(anchors, indent=1, allow_nan=True) + "\n")
    return path
