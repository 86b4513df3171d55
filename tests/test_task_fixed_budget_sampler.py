"""Trust tests for tasks/diffusion-fixed-budget-sampler, with the static policy switched off
(``lint=False``): the task kit's child is what stops them.

The known exploit (issue 19): the sampler rebuilt the exact target mixture from the fixed
problem files (gmm.py, problems.py) and, at the final evaluation, the hidden setting's spec, and
returned exact samples using none of its denoiser calls (final score 85.8). Agent code now runs
in a child that reads sampler.py and nothing else of the task folder and cannot see the parent;
the hidden spec reaches only the parent, over the secrets channel; the parent counts the NFE."""

from __future__ import annotations

from pathlib import Path

import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "diffusion-fixed-budget-sampler"
LABEL = "gmm2d-8modes-nfe5"  # the quickest visible setting
HIDDEN = "gmm32d-10modes-nfe6"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """import math
import os
import sys

import numpy as np


def task_folder():
    # the workspace is on the child's sys.path (it imports sampler.py from there)
    return next(p for p in sys.path if os.path.exists(os.path.join(p, "sampler.py")))

"""

# 1. the exploit of issue 19: rebuild the exact mixture from the fixed problem files and return
#    exact samples without a single denoiser call
EXACT_FROM_PROBLEMS = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    import gmm
    import problems

    for name, p in problems.PROBLEMS.items():
        spec = problems.make_spec(**p)
        if len(spec["means"][0]) == shape[1] and spec["n_samples"] == shape[0]:
            return gmm.GaussianMixture.from_spec(spec).sample(shape[0], rng)
    return np.zeros(shape)
"""
)

# 2. the same files read as data, through numpy (no lint flags np.fromfile / np.load)
NUMPY_READS_FIXED_FILE = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    raw = np.fromfile(os.path.join(task_folder(), "problems.py"), dtype=np.uint8)
    return np.zeros(shape) + raw[:1]
"""
)

# 3. the hidden setting's spec: wherever it might lie (the task folder, its hidden/ folder)
HIDDEN_SPEC = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    here = task_folder()
    for path in (os.path.join(here, "extra_problem.json"),
                 os.path.join(here, "..", "hidden", "extra_problem.json")):
        spec = np.load(path, allow_pickle=False)
    return np.zeros(shape)
"""
)

# 4. the parent's command line (which names the spec file) and its environment
PARENT_PROC = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    argv = np.fromfile(f"/proc/{os.getppid()}/cmdline", dtype=np.uint8)
    return np.zeros(shape)
"""
)

# 5. writing a fixed file (the next run of the harness would import it)
WRITE_FIXED = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    with open(os.path.join(task_folder(), "gmm.py"), "a") as f:
        f.write("# patched")
    return np.zeros(shape)
"""
)

# 6. one denoiser call more than the budget (the refusal is caught, the run goes on)
EXTRA_CALL = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    x = rng.standard_normal(shape) * sigma_max
    for i in range(nfe + 1):
        try:
            x = denoise(x, 1.0)
        except RuntimeError:
            pass
    return x
"""
)

# 7. calls straight down the pipe, behind the proxy (the proxy keeps no count: the parent does)
RAW_CALLS = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    x = rng.standard_normal(shape) * sigma_max
    for i in range(nfe + 2):
        denoise._conn.send_bytes(b"D" + np.array([1.0]).tobytes() + x.tobytes())
        denoise._conn.recv_bytes()
    return x
"""
)

# 8. broken outputs: NaN, the wrong shape, a frame far larger than the samples
NAN = (
    HEAD
    + "\ndef sample(denoise, shape, nfe, sigma_min, sigma_max, rng):\n    return np.full(shape, np.nan)\n"
)
WRONG_SHAPE = (
    HEAD
    + "\ndef sample(denoise, shape, nfe, sigma_min, sigma_max, rng):\n"
    + "    return np.zeros((shape[0] + 1, shape[1]))\n"
)
HUGE = (
    HEAD
    + """
def sample(denoise, shape, nfe, sigma_min, sigma_max, rng):
    denoise._conn.send_bytes(b"R" + bytes(64 * shape[0] * shape[1]))
    return np.zeros(shape)
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_rebuilding_the_mixture_from_the_problem_files_is_stopped(task):
    err = run_cheat(task, LABEL, EXACT_FROM_PROBLEMS, lint=False)
    assert "policy violation" in err and "gmm.py" in err


@pytest.mark.slow
def test_rebuilding_the_mixture_is_stopped_on_the_hidden_setting(task):
    err = run_cheat(task, HIDDEN, EXACT_FROM_PROBLEMS, lint=False)
    assert "policy violation" in err and "gmm.py" in err


@pytest.mark.slow
def test_numpy_cannot_read_a_fixed_file(task):
    err = run_cheat(task, LABEL, NUMPY_READS_FIXED_FILE, lint=False)
    assert "policy violation" in err and "problems.py" in err


@pytest.mark.slow
def test_the_hidden_spec_is_out_of_reach(task):
    """At the final evaluation the spec is no file of the workspace (it reaches the parent over
    the secrets channel); the places where it could lie are refused all the same."""
    err = run_cheat(task, HIDDEN, HIDDEN_SPEC, lint=False)
    assert "policy violation" in err and "extra_problem.json" in err


@pytest.mark.slow
@pytest.mark.parametrize("label", [LABEL, HIDDEN])
def test_the_parents_command_line_is_out_of_reach(task, label):
    """The guard names it; under it, Landlock refuses (EACCES) and the sandbox's /proc hides
    other uids' entries (ENOENT)."""
    err = run_cheat(task, label, PARENT_PROC, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err


@pytest.mark.slow
def test_writing_a_fixed_file_is_stopped(task):
    err = run_cheat(task, LABEL, WRITE_FIXED, lint=False)
    assert "policy violation" in err and "for writing" in err


def test_one_call_over_the_budget_fails(task):
    err = run_cheat(task, LABEL, EXTRA_CALL, lint=False)
    assert "NFE budget exceeded" in err and "1 refused" in err


@pytest.mark.slow
def test_calls_behind_the_proxy_are_counted_by_the_parent(task):
    err = run_cheat(task, LABEL, RAW_CALLS, lint=False)
    assert "NFE budget exceeded" in err and "2 refused" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NAN, "samples contain NaN"),
        (WRONG_SHAPE, "must return an array of shape"),
        (HUGE, "sent a message over"),
    ],
    ids=["nan", "wrong-shape", "huge"],
)
def test_broken_outputs_fail_clearly(task, text, message):
    err = run_cheat(task, LABEL, text, lint=False)
    assert message in err


@pytest.mark.slow
@pytest.mark.parametrize("label", [LABEL, HIDDEN])
def test_honest_reference_scores_as_anchored(task, label):
    """Control: the reference baseline (iPNDM) in the same child gives its anchored metrics."""
    assert_anchored(task, "ipndm", [label], lint=False)
