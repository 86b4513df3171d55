"""Trusted grader of ml-symbolic-regression (runs outside the sandbox).

Reads result.json, written by the harness parent process (run.py) after the search's process
exited, rebuilds each run's test points from the label, the seed and the instance key
(repo/problems.py; the hidden setting's spec from hidden/), parses the returned expressions
with the fixed grammar and re-evaluates them itself (no expression is run as Python); the
harness's own numbers must agree, and no run may have used more evaluations than its budget.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

from mlsbench_env.evaluation.kit_result import read_kit_result

HIDDEN = {"nguyen-12": "nguyen-12.json"}


def _problems(task_dir: pathlib.Path):
    # private module names, so that nothing clashes with other tasks' graders; problems.py
    # imports grammar, which must resolve to this task's grammar.py
    saved = {k: sys.modules.get(k) for k in ("grammar", "problems")}
    try:
        for name in ("grammar", "problems"):
            spec = importlib.util.spec_from_file_location(name, task_dir / "repo" / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules["problems"]
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    task_dir = pathlib.Path(task_dir)
    problems = _problems(task_dir)
    run = read_kit_result(setting, seed, out_dir, task_dir, problems, HIDDEN)
    spec = run.spec
    used = run.record.get("evals_used")
    if (
        not isinstance(used, list)
        or len(used) != spec["n_runs"]
        or not all(isinstance(u, int) and 0 <= u <= spec["budget"] for u in used)
    ):
        raise ValueError(
            f"evals_used must list {spec['n_runs']} counts within the budget "
            f"{spec['budget']}, got {used!r}"
        )
    exprs = run.record.get("expressions")
    if not isinstance(exprs, list) or not all(isinstance(e, str) for e in exprs):
        raise ValueError("result.json: expressions must be a list of strings")
    score = problems.score_expressions(run.name, spec, seed, run.key, exprs)
    for metric in ("test_nmse", "recovery_rate"):
        run.check_reported(metric, score[metric], abs_tol=1e-15)
    return {"test_nmse": score["test_nmse"], "recovery_rate": score["recovery_rate"]}
