"""`mlsbench validate` and `mlsbench calibrate`: checking a task and measuring its anchors."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlsbench_env.env.log import versions
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import (
    check_policy,
    final_evaluation,
    grade_submission,
    leaderboard_value,
    pipeline_evaluation,
    validate_submission,
)
from mlsbench_env.scoring import FinalResult, compute_anchors, medal_thresholds, score_runs
from mlsbench_env.spec import Task
from mlsbench_env.workspace import transplant


def validate(
    task: Task, *, run: bool = True, backend: str = "local", progress: Callable | None = None
) -> list[str]:
    """Problems with a loaded task (an empty list when it is fine)."""
    if task.is_competition:
        return validate_competition(task, run=run)
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
        missing = [
            f"anchors.json: no anchor for {s.label}/{m.name}; re-run calibrate"
            for s in task.spec.settings
            for m in task.spec.metrics
            if m.name not in anchors.get("anchors", {}).get(s.label, {})
        ]
        problems += missing or anchor_drift(task, anchors)
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


def validate_competition(task: Task, *, run: bool = True) -> list[str]:
    """A competition's checks: its files, its grader's two functions, the sample submission."""
    comp, problems = task.spec.competition, []
    if comp is None:
        return [f"{task.id}: task.yaml has no competition section"]
    grader = task.root / "grader.py"
    if not grader.is_file():
        problems.append(f"{grader}: missing (the trusted grader)")
    elif not all(f"def {f}(" in grader.read_text() for f in ("validate", "grade")):
        problems.append(f"{grader}: needs validate(submission, task_dir) and grade(...)")
    for name in ("description.md", comp.sample_submission):
        if not (task.repo / name).is_file():
            problems.append(f"repo/{name}: missing (the workspace must hold it)")
    if (task.repo / comp.submission).exists():
        problems.append(f"repo/{comp.submission}: the workspace must not start with a submission")
    private = task.root / "private"
    if not private.is_dir() or not any(private.iterdir()):
        problems.append(f"{private}: missing (the private test labels the grader reads)")
    else:  # no private file may also sit in the workspace
        public = {p.read_bytes() for p in task.repo.rglob("*") if p.is_file()}
        for p in private.rglob("*"):
            if p.is_file() and p.read_bytes() in public:
                problems.append(f"private/{p.name} is also in repo/: the labels would leak")
    if len(task.spec.seeds.final) < 3:
        problems.append("task.yaml: seeds.final: baselines need 3+ seeds (their spread)")
    for name in task.baseline_names[1:]:
        try:
            task.baseline_files(name)
        except MLSBenchError as e:
            problems.append(f"baseline {name}: {e}")
    anchors = task.anchors()
    if anchors is None:
        problems.append("anchors.json: missing; run `mlsbench calibrate " + task.id + "`")
    elif not anchors.get("medals"):
        problems.append("anchors.json: no medal thresholds; re-run calibrate")
    else:
        problems += anchor_drift(task, anchors)
    if run and not problems:
        ok, why = validate_submission(task, task.repo / comp.sample_submission)
        if not ok:
            problems.append(f"the sample submission does not validate: {why}")
        with tempfile.TemporaryDirectory() as tmp:
            for r in grade_submission(task, task.repo / comp.sample_submission, Path(tmp)):
                if r.error:
                    problems.append(f"grading the sample submission, split {r.label}: {r.error}")
    return problems


def anchor_drift(task: Task, anchors: dict) -> list[str]:
    """Where the anchors of ``anchors.json`` are not what its own per-seed results give under
    the task's ``anchor`` mode (an edited task.yaml or a hand-edited file): as problems."""
    mode = task.spec.anchor
    redo = f"re-run `mlsbench calibrate {task.id}`"
    made = anchors.get("anchor", "reference")
    if made != mode:
        return [f"anchors.json: made with anchor: {made}, task.yaml says anchor: {mode}; {redo}"]
    try:
        expected = compute_anchors(task, anchors.get("results", {}))
    except ValueError as e:
        return [f"anchors.json: {e}; {redo}"]
    problems = []
    for label, per_metric in expected.items():
        for name, want in per_metric.items():
            got = anchors["anchors"].get(label, {}).get(name, {})
            for key, value in want.items():
                if key not in got or not math.isclose(got[key], value, rel_tol=1e-9):
                    problems.append(
                        f"anchors.json: {label}/{name} {key} is {got.get(key)}, its results give "
                        f"{value} under anchor: {mode}; {redo}"
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
        return name, run_baseline(task, name, backend=backend, progress=progress)

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
    anchors: dict[str, Any] = {
        "task": task.id,
        "version": task.spec.version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": machine(backend),
        "seeds": list(task.spec.seeds.final),
        "reference_baseline": task.spec.reference_baseline,
        "anchor": task.spec.anchor,
        "results": {n: {k: v for k, v in r.items() if k != "_errors"} for n, r in results.items()},
        "errors": {n: r["_errors"] for n, r in results.items() if "_errors" in r},
        "anchors": compute_anchors(
            task, {n: {k: v for k, v in r.items() if k != "_errors"} for n, r in results.items()}
        ),
    }
    if task.is_competition:
        anchors["leaderboard"] = leaderboard(task, finished)
        anchors["medals"] = medal_thresholds(
            [e["value"] for e in anchors["leaderboard"]], task.spec.metrics[0].direction
        )
    rescored = {n: score_runs(task, fr.runs, anchors) for n, fr in finished.items()}
    return anchors, rescored


def run_baseline(
    task: Task,
    name: str,
    *,
    backend: str = "local",
    seeds: list[int] | None = None,
    progress: Callable[[str, str, int, object], None] | None = None,
) -> FinalResult:
    """One baseline over every setting (hidden ones too) x ``seeds`` (default: the final
    seeds), unscored: the runs a calibration measures and a drift check replays."""
    cb = (lambda label, seed, run: progress(name, label, seed, run)) if progress else None
    if task.is_competition:
        return pipeline_evaluation(
            task, task.baseline_files(name), backend=backend, seeds=seeds, anchors={}, progress=cb
        )
    return final_evaluation(
        task, task.baseline_regions(name), {}, backend=backend, seeds=seeds, anchors={}, progress=cb
    )


def machine(backend: str = "local") -> dict[str, Any]:
    """What floating-point results depend on besides the code: the CPU, numpy's BLAS and the
    platform of this process (the sandbox's own for ``local``; a container brings its own
    numpy, so ``sandbox`` names the backend the runs used)."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "blas": blas(),
        "platform": platform.platform(),
        "sandbox": backend,
    }


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> dict[str, Any]:
    """numpy's BLAS as loaded (threadpoolctl, when installed: the kernel OpenBLAS picked for
    this CPU, which is what changes the last bits), else as numpy was built."""
    try:
        import numpy as np
    except ImportError:
        return {}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        built = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        return {"numpy": np.__version__, "name": built.get("name"), "version": built.get("version")}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            keep = ("internal_api", "version", "architecture", "threading_layer", "num_threads")
            return {"numpy": np.__version__, **{k: pool.get(k) for k in keep}}
    return {"numpy": np.__version__}


def leaderboard(task: Task, finished: dict[str, FinalResult]) -> list[dict]:
    """One entry per baseline pipeline and seed (the sample submission once): the leaderboard
    the medal thresholds come from, best first."""
    entries: list[dict[str, Any]] = []
    for name, fr in finished.items():
        for seed in sorted({r.seed for r in fr.runs}):
            value = leaderboard_value(task, [r for r in fr.runs if r.seed == seed])
            if value is not None:
                entries.append({"name": name, "seed": seed, "value": value})
            if name == "default":  # the sample submission is the same file on every seed
                break
    entries.sort(key=lambda e: e["value"], reverse=task.spec.metrics[0].direction == "higher")
    return entries


def write_anchors(task: Task, anchors: dict) -> Path:
    path = task.root / "anchors.json"
    path.write_text(json.dumps(anchors, indent=1, allow_nan=True) + "\n")
    return path
