"""Benchmark problems, instances and the evaluator (fixed). Only the harness parent (run.py) and
the grader use this module; the search never sees a target, a test point or a noise draw.

A setting is a spec: the target as an expression of grammar.py, the number of variables, the
sampling range (each variable uniform in [lo, hi], as tabulated by McDermott et al. 2012), the
number of training points, the noise level, the number of test points, the fitness-evaluation
budget and the number of independent runs (instances) one setting run plays. Each instance draws
its training points, noise and test points from sha256(instance key | setting | seed | run).

Training targets carry Gaussian noise of standard deviation noise x RMS(target) (the SRBench
convention, La Cava et al. 2021); the test targets are noiseless. Metric of one run:
NMSE = mean((f - y)^2) / var(y) on the test points, at most 1 (1 = no better than predicting the
mean; a non-finite prediction counts as 1); the setting's test_nmse is the geometric mean over
the runs of max(NMSE, NMSE_FLOOR), and a run recovers the target exactly when its NMSE is at most
EXACT (numeric identity on the dense test points).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

import grammar

PUBLIC_KEY = "public"
NMSE_FLOOR = 1e-6  # the metric's floor: below the training noise, differences are numeric
EXACT = 1e-10  # exact recovery: numeric identity with the target on the test points

SETTINGS = {
    "nguyen-7": dict(target="add log add x0 1 log add mul x0 x0 1", n_vars=1, lo=0.0, hi=2.0,
                     n_train=20, noise=0.01, n_test=1000, budget=2000, n_runs=16),
    "nguyen-10": dict(target="mul 2 mul sin x0 cos x1", n_vars=2, lo=0.0, hi=1.0,
                      n_train=20, noise=0.01, n_test=1000, budget=2000, n_runs=16),
    "koza-3": dict(target="add sub mul mul x0 x0 mul mul x0 x0 mul x0 x0 mul 2 mul mul x0 x0 "
                          "mul x0 x0 mul x0 x0", n_vars=1, lo=-1.0, hi=1.0,
                   n_train=20, noise=0.01, n_test=1000, budget=2000, n_runs=16),
}
FIELDS = {"target": str, "n_vars": int, "lo": float, "hi": float, "n_train": int,
          "noise": float, "n_test": int, "budget": int, "n_runs": int}


def check_spec(spec: dict) -> dict:
    """The spec with its fields checked; ValueError saying what is wrong."""
    for field, kind in FIELDS.items():
        value = spec.get(field)
        if not isinstance(value, (int, float) if kind is float else kind) or value is True:
            raise ValueError(f"setting field {field!r} must be {kind.__name__}, got {value!r}")
    for field in ("n_vars", "n_train", "n_test", "budget", "n_runs"):
        if spec[field] < 1:
            raise ValueError(f"setting field {field!r} must be >= 1, got {spec[field]}")
    if not spec["lo"] < spec["hi"] or spec["noise"] < 0:
        raise ValueError("setting needs lo < hi and noise >= 0")
    grammar.parse(spec["target"], spec["n_vars"])
    return spec


def _rng(key: str, name: str, seed: int, stream: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{key}|{name}|{seed}|{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def evaluate(tokens: list[str], X: np.ndarray) -> np.ndarray:
    """The value of a parsed expression at every row of X (protected operators, grammar.py)."""
    n = X.shape[0]
    stack: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for tok in reversed(tokens):
            arity = grammar.ARITY.get(tok)
            if arity is None:
                if tok[:1] == "x":
                    stack.append(X[:, int(tok[1:])])
                else:
                    stack.append(np.full(n, float(tok)))
            elif arity == 1:
                a = stack.pop()
                if tok == "sin":
                    stack.append(np.sin(a))
                elif tok == "cos":
                    stack.append(np.cos(a))
                elif tok == "exp":
                    stack.append(np.exp(np.minimum(a, 50.0)))
                else:
                    m = np.abs(a)
                    stack.append(np.where(m < 1e-9, 0.0, np.log(np.maximum(m, 1e-9))))
            else:
                a, b = stack.pop(), stack.pop()
                if tok == "add":
                    stack.append(a + b)
                elif tok == "sub":
                    stack.append(a - b)
                elif tok == "mul":
                    stack.append(a * b)
                else:
                    small = np.abs(b) < 1e-9
                    stack.append(np.where(small, 1.0, a / np.where(small, 1.0, b)))
    return stack.pop()


def nmse(pred: np.ndarray, y: np.ndarray) -> float:
    """Test NMSE, at most 1; a non-finite prediction counts as 1."""
    if not np.all(np.isfinite(pred)):
        return 1.0
    with np.errstate(all="ignore"):
        value = float(np.mean((pred - y) ** 2) / np.var(y))
    if not math.isfinite(value):
        return 1.0
    return min(value, 1.0)


class Instance:
    """One run's data: training inputs and noisy targets, noiseless test points."""

    def __init__(self, name: str, spec: dict, seed: int, key: str, run: int):
        rng = _rng(key, name, seed, f"run{run}")
        d, lo, hi = spec["n_vars"], spec["lo"], spec["hi"]
        target = grammar.parse(spec["target"], d)
        self.X_train = rng.uniform(lo, hi, (spec["n_train"], d))
        clean = evaluate(target, self.X_train)
        rms = float(np.sqrt(np.mean(clean**2)))
        self.y_train = clean + spec["noise"] * rms * rng.standard_normal(spec["n_train"])
        self.X_test = rng.uniform(lo, hi, (spec["n_test"], d))
        self.y_test = evaluate(target, self.X_test)
        self.search_seed = int(rng.integers(0, 2**31 - 1))


def score_expressions(name: str, spec: dict, seed: int, key: str, exprs: list[str]) -> dict:
    """Test NMSE of each run's returned expression, their geometric mean, the recovery rate."""
    spec = check_spec(dict(spec))
    if len(exprs) != spec["n_runs"]:
        raise ValueError(f"{len(exprs)} expressions for {spec['n_runs']} runs")
    values = []
    for run, text in enumerate(exprs):
        inst = Instance(name, spec, seed, key, run)
        values.append(nmse(evaluate(grammar.parse(text, spec["n_vars"]), inst.X_test),
                           inst.y_test))
    logs = [math.log10(max(v, NMSE_FLOOR)) for v in values]
    return {
        "test_nmse": 10 ** (sum(logs) / len(logs)),
        "recovery_rate": sum(v <= EXACT for v in values) / len(values),
        "nmse_per_run": values,
    }
