"""Trusted grader of opt-evolution-strategy (runs outside the sandbox).

Reads result.json written by the harness parent process (run.py) after the optimizer process
exited, rebuilds the objective of the setting from its label, the seed and the instance key,
recomputes the objective value at best_x and checks the evaluation budget.
"""

from __future__ import annotations

import importlib.util
import json
import math
import pathlib
import sys

import numpy as np

# label -> (function, dim, budget per dim); must match the commands in task.yaml
SETTINGS = {
    "rastrigin-30d": ("rastrigin", 30, 2000),
    "rosenbrock-30d": ("rosenbrock", 30, 1000),
    "ackley-30d": ("ackley", 30, 200),
    "rosenbrock-50d": ("rosenbrock", 50, 1000),
    "ellipsoid-50d": ("ellipsoid", 50, 1000),
}


def _load(path: pathlib.Path, name: str):
    # a private module name, so that nothing clashes with other tasks' graders
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def _objective(task_dir: pathlib.Path, function: str, dim: int, seed: int, instance: str):
    functions = _load(task_dir / "repo" / "functions.py", "_opt_es_grader_functions")
    builders = dict(functions.FUNCTIONS)
    hidden = task_dir / "hidden"
    if (hidden / "hidden_functions.py").is_file():
        builders.update(_load(hidden / "hidden_functions.py", "_opt_es_grader_hidden").BUILDERS)
    if instance == "public":
        key = functions.PUBLIC_KEY
    elif instance == "final":
        key = (hidden / "instance_key.txt").read_text().strip()
    else:
        raise ValueError(f"result.json: unknown instance {instance!r}")
    return functions.make_objective(function, dim, seed, key, builders)


def grade(setting: str, seed: int, out_dir: pathlib.Path, task_dir: pathlib.Path) -> dict:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    function, dim, per_dim = SETTINGS[setting]
    budget = per_dim * dim
    path = pathlib.Path(out_dir) / "result.json"
    if not path.is_file():
        raise FileNotFoundError(
            "no result.json: the run failed (the optimizer raised, evaluated nothing or was "
            "killed; see the log)")
    r = json.loads(path.read_text())
    if r.get("error"):  # the harness failed the run and says why
        raise ValueError(f"the run failed: {r['error']}")
    for field in ("function", "dim", "seed", "instance", "budget", "n_evals", "best_f", "best_x"):
        if field not in r:
            raise ValueError(f"result.json lacks {field!r}")
    if (r["function"], r["dim"], r["seed"], r["budget"]) != (function, dim, seed, budget):
        raise ValueError(
            f"result.json is for {r['function']}-{r['dim']}d seed {r['seed']} budget "
            f"{r['budget']}, expected {function}-{dim}d seed {seed} budget {budget}")
    n_evals = int(r["n_evals"])
    if not 1 <= n_evals <= budget:
        raise ValueError(f"evaluation budget violated: {n_evals} evaluations, budget {budget}")
    x = np.asarray(r["best_x"], dtype=np.float64)
    if x.shape != (dim,):
        raise ValueError(f"best_x must have shape ({dim},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("best_x contains NaN or inf")
    obj = _objective(pathlib.Path(task_dir), function, dim, seed, r["instance"])
    if np.any(x < obj.lower) or np.any(x > obj.upper):
        raise ValueError("best_x lies outside the search box")
    f = float(obj(x[None, :])[0])
    reported = float(r["best_f"])
    if not math.isclose(f, reported, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"objective at best_x is {f!r} but the harness recorded {reported!r}")
    return {"best_fitness": max(f, 0.0)}
