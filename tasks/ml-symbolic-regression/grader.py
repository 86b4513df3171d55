"""Trusted grader of ml-symbolic-regression (runs outside the sandbox).

Reads result.json, written by the harness parent process (run.py) after the search's process
exited, rebuilds each run's test points from the label, the seed and the instance key
(repo/problems.py; the hidden setting's spec from hidden/), parses the returned expressions
with the fixed grammar and re-evaluates them itself (no expression is run as Python); the
harness's own numbers must agree, and no run may have used more evaluations than its budget.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

VISIBLE = ("nguyen-7", "nguyen-10", "koza-3")
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
    out_dir, task_dir = pathlib.Path(out_dir), pathlib.Path(task_dir)
    problems = _problems(task_dir)
    if setting in VISIBLE:
        name, spec = setting, problems.SETTINGS[setting]
    elif setting in HIDDEN:
        name = HIDDEN[setting]
        spec = json.loads((task_dir / "hidden" / name).read_text())
    else:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted((*VISIBLE, *HIDDEN))}")
    path = out_dir / "result.json"
    if not path.is_file():
        raise FileNotFoundError("no result.json: the run failed (see the log)")
    r = json.loads(path.read_text())
    if r.get("error"):  # the harness failed the run and says why
        raise ValueError(f"the run failed: {r['error']}")
    if (r.get("setting"), r.get("seed"), r.get("spec")) != (name, seed, spec):
        raise ValueError(
            f"result.json is for {r.get('setting')!r} seed {r.get('seed')}, "
            f"expected {name!r} seed {seed} with spec {spec}"
        )
    if r.get("instance") == "public":
        key = problems.PUBLIC_KEY
    elif r.get("instance") == "final":
        key = (task_dir / "hidden" / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {r.get('instance')!r}")
    used = r.get("evals_used")
    if (
        not isinstance(used, list)
        or len(used) != spec["n_runs"]
        or not all(isinstance(u, int) and 0 <= u <= spec["budget"] for u in used)
    ):
        raise ValueError(
            f"evals_used must list {spec['n_runs']} counts within the budget "
            f"{spec['budget']}, got {used!r}"
        )
    exprs = r.get("expressions")
    if not isinstance(exprs, list) or not all(isinstance(e, str) for e in exprs):
        raise ValueError("result.json: expressions must be a list of strings")
    score = problems.score_expressions(name, spec, seed, key, exprs)
    for metric in ("test_nmse", "recovery_rate"):
        reported = float(r.get(metric, math.nan))
        if not math.isclose(score[metric], reported, rel_tol=1e-9, abs_tol=1e-15):
            raise ValueError(
                f"{metric} of the returned expressions is {score[metric]!r} "
                f"but the harness recorded {reported!r}"
            )
    return {"test_nmse": score["test_nmse"], "recovery_rate": score["recovery_rate"]}
