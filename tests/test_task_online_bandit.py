"""optimization-online-bandit: the metric, the task's own cheats through the real final
evaluation with the static policy off (the kit's least-privileged child and the parent's checks
are what stop them), and an honest-code control.

The policy only ever receives contexts and the rewards of the arms it pulled; the means, change
points and parameters live in the parent (bandits.py, built from the seed and the instance key),
and the grader replays them to recompute the regret of the pulled arms."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("optimization-online-bandit")
QUICK = "bernoulli-k10"
HIDDEN = "piecewise-k8-fast"


def _bandits():
    spec = importlib.util.spec_from_file_location("_ob_bandits", TASK.repo / "bandits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def policy_with(select_body: str) -> str:
    """The default policy whose select() first runs ``select_body``."""
    (region,) = TASK.regions
    lines = (TASK.repo / region.file).read_text().splitlines(keepends=True)
    text = "".join(lines[region.start - 1 : region.end])
    head = "    def select(self, t, contexts):\n"
    assert head in text
    inner = "".join("        " + line + "\n" for line in select_body.strip("\n").splitlines())
    return text.replace(head, head + inner, 1)


@pytest.mark.parametrize("name", ["bernoulli-k10", "linear-d6-k10", "piecewise-k5"])
def test_the_oracle_has_zero_regret_and_uniform_play_about_one(name):
    bandits = _bandits()
    spec = {**bandits.SETTINGS[name], "horizon": 600, "n_runs": 50}
    if spec["kind"] == "piecewise":
        spec["min_segment"] = 100
    inst = bandits.Instance(name, spec, 0, bandits.PUBLIC_KEY)
    oracle = np.stack([inst.step(t)[1].argmax(axis=1) for t in range(spec["horizon"])])
    assert bandits.regret_of(name, spec, 0, "public", oracle)["normalized_regret"] == 0.0
    uniform = np.random.default_rng(1).integers(0, spec["n_arms"], oracle.shape)
    assert bandits.regret_of(name, spec, 0, "public", uniform)["normalized_regret"] == (
        pytest.approx(1.0, abs=0.05)
    )
    other = bandits.Instance(name, spec, 0, "another key")
    assert not np.array_equal(
        other.step(0)[1], bandits.Instance(name, spec, 0, "public").step(0)[1]
    )


def test_the_generator_and_the_hidden_specs_are_out_of_reach():
    error = run_cheat(TASK, HIDDEN, policy_with("import bandits"), lint=False)
    assert "No module named 'bandits'" in error or "policy violation" in error, error
    read = "import os\nopen(os.path.join(os.path.dirname(__file__), 'bandits.py')).read()"
    error = run_cheat(TASK, HIDDEN, policy_with(read), lint=False)
    assert "policy violation" in error and "bandits.py" in error, error


@pytest.mark.parametrize(
    "body, named",
    [
        ("return np.full(self.R, self.K)", "outside [0, 10)"),
        ("return np.zeros(self.R + 1, dtype=int)", "shape (200,)"),
        ("return np.zeros(self.R)", "integer array"),
    ],
)
def test_an_invalid_choice_fails_the_run_with_a_message(body, named):
    error = run_cheat(TASK, QUICK, policy_with(body), lint=False)
    assert named in error, error


@pytest.mark.slow
def test_frames_written_on_the_pipe_gain_nothing():
    """A policy that finds the pipe and sends a malformed frame fails the run; the parent reads
    exactly one arm choice of n_runs int32 per step."""
    body = (
        "import gc\n"
        "conn = next(o for o in gc.get_objects() if type(o).__name__ == 'Connection')\n"
        "conn.send_bytes(b'A' + bytes(3))\n"
    )
    error = run_cheat(TASK, QUICK, policy_with(body), lint=False)
    assert "protocol error" in error, error


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored():
    # on a hidden setting: its spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
