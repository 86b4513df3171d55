"""ml-symbolic-regression: the metric and the grammar, the grader's recomputation, the task's
own cheats through the real final evaluation with the static policy off (the kit's
least-privileged child and the parent's checks are what stop them), and an honest-code control.

The search only ever receives the training inputs and the absolute errors of the expressions it
asks about, each counted against the run's budget by the parent; targets, noise and test points
live in the parent (problems.py, built from the seed and the instance key), and the grader
re-evaluates the returned expressions, parsed by the fixed grammar, never run as Python."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("ml-symbolic-regression")
QUICK = "nguyen-7"
HIDDEN = "nguyen-12"


def _modules():
    saved = {k: sys.modules.get(k) for k in ("grammar", "problems")}
    try:
        for name in ("grammar", "problems"):
            spec = importlib.util.spec_from_file_location(name, TASK.repo / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return sys.modules["grammar"], sys.modules["problems"]
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def search_with(body: str) -> str:
    """The default search whose body first runs ``body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    head = "def search(X, evaluate, budget, rng):\n"
    assert head in text
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return text.replace(head, head + inner, 1)


@pytest.mark.parametrize("name", ["nguyen-7", "nguyen-10", "koza-3"])
def test_the_target_is_recovered_and_the_mean_scores_one(name):
    _, problems = _modules()
    spec = problems.SETTINGS[name]
    runs = spec["n_runs"]
    target = problems.score_expressions(name, spec, 0, "public", [spec["target"]] * runs)
    assert target["test_nmse"] == problems.NMSE_FLOOR and target["recovery_rate"] == 1.0
    # an equal formula written differently is an exact recovery too (numeric identity)
    twice = f"mul 0.5 add {spec['target']} {spec['target']}"
    assert problems.score_expressions(name, spec, 0, "public", [twice] * runs)["recovery_rate"] == 1
    mean = float(np.mean(problems.Instance(name, spec, 0, "public", 0).y_test))
    const = problems.score_expressions(name, spec, 0, "public", [repr(mean)] * runs)
    assert const["test_nmse"] == pytest.approx(1.0, abs=0.01) and const["recovery_rate"] == 0
    blowup = problems.score_expressions(name, spec, 0, "public", ["exp exp exp x0"] * runs)
    assert blowup["test_nmse"] == 1.0
    a = problems.Instance(name, spec, 0, "public", 0)
    b = problems.Instance(name, spec, 0, "another key", 0)
    assert not np.array_equal(a.X_train, b.X_train)
    noise = a.y_train - problems.evaluate(problems.grammar.parse(spec["target"], 2), a.X_train)
    assert 0 < np.std(noise) < 0.05 * np.sqrt(np.mean(a.y_train**2))


@pytest.mark.parametrize(
    "text, named",
    [
        ("add x0", "incomplete"),
        ("add x0 x0 x0", "left over"),
        ("__import__ x0", "unknown token"),
        ("x2", "unknown token"),
        ("nan", "unknown token"),
        ("1e9", "unknown token"),
        (" ".join(["add"] * 150 + ["x0"] * 151), "at most 200"),
    ],
)
def test_the_grammar_refuses_what_is_not_an_expression(text, named):
    grammar, _ = _modules()
    with pytest.raises(ValueError, match=named):
        grammar.parse(text, 2)


def test_the_grader_recomputes_and_refuses_forged_numbers(tmp_path):
    from mlsbench_env.evaluation.run import load_grader

    _, problems = _modules()
    spec = problems.SETTINGS[QUICK]
    exprs = ["add x0 1"] * spec["n_runs"]
    score = problems.score_expressions(QUICK, spec, 0, "public", exprs)
    record = {
        "setting": QUICK,
        "spec": spec,
        "seed": 0,
        "instance": "public",
        "expressions": exprs,
        "evals_used": [spec["budget"]] * spec["n_runs"],
        **score,
    }
    grader = load_grader(TASK)

    def grade(**change):
        (tmp_path / "result.json").write_text(json.dumps({**record, **change}))
        return grader.grade(QUICK, 0, tmp_path, TASK.root)

    assert grade()["test_nmse"] == score["test_nmse"]
    with pytest.raises(ValueError, match="harness recorded"):
        grade(test_nmse=1e-6)
    with pytest.raises(ValueError, match="within the budget"):
        grade(evals_used=[spec["budget"] + 1] * spec["n_runs"])
    with pytest.raises(ValueError, match="unknown token"):
        grade(expressions=["__import__('os')"] * spec["n_runs"])


@pytest.mark.slow
def test_the_problems_and_the_hidden_spec_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, search_with("import problems"), lint=False)
    assert "No module named 'problems'" in error or "policy violation" in error, error
    read = "import os\nopen(os.path.join(os.path.dirname(__file__), 'problems.py')).read()"
    error = run_cheat(TASK, HIDDEN, search_with(read), lint=False)
    assert "policy violation" in error and "problems.py" in error, error


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, named",
    [
        ("evaluate(['x0'] * (budget + 1))", "evals budget exhausted"),
        ("evaluate(['x0'])\nevaluate(['x0'] * budget)", "evals budget exhausted"),
        ("evaluate(['__import__(\"os\")'])", "invalid expression"),
        ("return 'x0 + 1'", "invalid expression"),
        ("return 3.0", "must return an expression string"),
    ],
)
def test_budget_overruns_and_invalid_expressions_fail_the_run(body, named):
    error = run_cheat(TASK, QUICK, search_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_frames_written_on_the_pipe_gain_nothing():
    """A search that finds the pipe and sends a forged answer frame out of turn fails the run:
    the parent takes only E and R frames, and an R frame must parse as one expression."""
    body = (
        "import gc\n"
        "conn = next(o for o in gc.get_objects() if type(o).__name__ == 'Connection')\n"
        "conn.send_bytes(b'O' + bytes(8))\n"
    )
    error = run_cheat(TASK, QUICK, search_with(body), lint=False)
    assert "protocol error" in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on the hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
