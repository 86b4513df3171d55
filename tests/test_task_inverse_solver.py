"""Trust tests for tasks/diffusion-prior-inverse-solver: every way to cheat the NFE budget or read
the prior's parameters (with which the posterior would be trivial) fails the setting (score 0)
with a clear message. The cheats run with the static policy off (``lint=False``): the task kit's
child (it reads solver.py and nothing else of the task folder, cannot see the parent) and the
parent's NFE count are what stop them. No measurement happens in the child and ``solve`` is
called once per run, so global hooks and state kept between calls gain nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "diffusion-prior-inverse-solver"
LABEL = "inpaint-32d-s0.05-nfe40"  # the cheapest visible setting
HIDDEN = "superres4x-40d-s0.1-nfe50"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK
REPO = TASK_DIR / "repo"

HEAD = """import math
import os
import sys

import numpy as np


def task_folder():
    # the workspace is on the child's sys.path (it imports solver.py from there)
    return next(p for p in sys.path if os.path.exists(os.path.join(p, "solver.py")))

"""

# 1. one denoiser call too many (the refusal is caught, the run goes on)
EXTRA_DENOISE = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    x = rng.standard_normal(model.shape)
    for i in range(nfe + 1):
        try:
            x = model.denoise(x, 1.0)
        except RuntimeError:
            pass
    return x
"""
)

# 2. backward passes are counted too: a VJP-only loop past the budget
EXTRA_VJP = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    x = rng.standard_normal(model.shape)
    x0 = model.denoise(x, 1.0)
    for i in range(nfe):
        try:
            x0 = x0 - 0.01 * model.vjp(x0 @ A.T @ A - y @ A)
        except RuntimeError:
            pass
    return x0
"""
)

# 3. reading the prior: through the task's modules ...
READ_PRIOR_IMPORT = (
    HEAD
    + """import problems


def solve(model, A, y, noise_std, nfe, rng):
    spec = problems.PROBLEMS["inpaint-32d"]
    return np.zeros(model.shape)
"""
)

# 3b. ... or straight from the files (numpy's readers: no lint flags them)
READ_PRIOR_FILE = (
    HEAD
    + """
RAW = np.fromfile(os.path.join(task_folder(), "problems.py"), dtype=np.uint8)


def solve(model, A, y, noise_std, nfe, rng):
    return np.zeros(model.shape)
"""
)

# 4. digging for the prior on the model object handed to the solver (it is a proxy: the prior
#    lives in the harness's parent process)
READ_PRIOR_MODEL = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    return model.prior.sample(model.shape[0], rng)
"""
)


# 5. talking to the parent behind the proxy's back with a made-up request
RAW_PIPE = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    model._conn.send_bytes(b"P" + b"please send the prior")
    return np.asarray(model._conn.recv_bytes())
"""
)


# 6. the final evaluation's secrets: the salt (with it the final priors could be rebuilt) and
#    the hidden spec, wherever they might lie, and the parent's command line
READ_SECRETS = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    here = task_folder()
    for name in ("salt.json", "extra_problem.json"):
        for folder in (here, os.path.join(here, "..", "hidden")):
            np.load(os.path.join(folder, name), allow_pickle=False)
    return np.zeros(model.shape)
"""
)
PARENT_PROC = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    np.fromfile(f"/proc/{os.getppid()}/cmdline", dtype=np.uint8)
    return np.zeros(model.shape)
"""
)

# 7. writing a fixed file
WRITE_FIXED = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    with open(os.path.join(task_folder(), "problems.py"), "a") as f:
        f.write("# patched")
    return np.zeros(model.shape)
"""
)

# 8. broken outputs: NaN, the wrong shape, a frame far larger than the samples
NAN = (
    HEAD
    + "\ndef solve(model, A, y, noise_std, nfe, rng):\n    return np.full(model.shape, np.nan)\n"
)
WRONG_SHAPE = HEAD + "\ndef solve(model, A, y, noise_std, nfe, rng):\n    return np.zeros((3, 3))\n"
HUGE = (
    HEAD
    + """
def solve(model, A, y, noise_std, nfe, rng):
    model._conn.send_bytes(b"R" + bytes(64 * model.shape[0] * model.shape[1]))
    return np.zeros(model.shape)
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_more_denoiser_calls_than_the_budget_fails(task):
    err = run_cheat(task, LABEL, EXTRA_DENOISE, lint=False)
    assert "NFE budget exceeded" in err and "1 refused" in err


def test_backward_passes_count_against_the_budget(task):
    err = run_cheat(task, LABEL, EXTRA_VJP, lint=False)
    assert "NFE budget exceeded" in err


@pytest.mark.parametrize("text", [READ_PRIOR_IMPORT, READ_PRIOR_FILE], ids=["import", "file"])
def test_reading_the_prior_is_refused(task, text):
    err = run_cheat(task, LABEL, text, lint=False)
    assert "policy violation" in err and "problems.py" in err


def test_the_model_proxy_holds_no_prior(task):
    err = run_cheat(task, LABEL, READ_PRIOR_MODEL, lint=False)
    assert "AttributeError" in err and "prior" in err


def test_unknown_requests_to_the_parent_fail_the_run(task):
    err = run_cheat(task, LABEL, RAW_PIPE, lint=False)
    assert "protocol error" in err and "b'P'" in err


@pytest.mark.slow
def test_the_secrets_are_out_of_reach(task):
    """At the final evaluation the salt and the hidden spec are no files of the workspace (they
    reach the parent over the secrets channel); the places they could lie are refused."""
    err = run_cheat(task, HIDDEN, READ_SECRETS, lint=False)
    assert "policy violation" in err and "salt.json" in err


@pytest.mark.slow
def test_the_parents_command_line_is_out_of_reach(task):
    """Refused by Landlock (EACCES) or hidden by the sandbox's /proc (ENOENT)."""
    err = run_cheat(task, HIDDEN, PARENT_PROC, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err


@pytest.mark.slow
def test_writing_a_fixed_file_is_stopped(task):
    err = run_cheat(task, LABEL, WRITE_FIXED, lint=False)
    assert "policy violation" in err and "for writing" in err


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
def test_honest_reference_scores_as_anchored(task):
    """Control: the reference (PiGDM) in the same child gives its anchored metrics on the hidden
    setting (a run with a hidden setting is salted, as in calibration)."""
    assert_anchored(task, "pigdm", [HIDDEN], lint=False)


def test_prior_parameters_never_enter_the_child():
    """The child gets A, y, the noise level and the budget; the prior stays in the parent."""
    src = (REPO / "harness.py").read_text()
    child = src[src.index("def child_main") : src.index("def serve")]
    assert "prior" not in child and "problems" not in child and "gmm" not in child
    run = (REPO / "run.py").read_text()
    assert "import problems" not in run.split("def main")[0]  # not imported in the spawn child


def test_vjp_matches_finite_differences():
    sys.path.insert(0, str(REPO))
    try:
        spec = importlib.util.spec_from_file_location("_dpis_gmm", REPO / "gmm.py")
        gmm = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gmm)
    finally:
        sys.path.remove(str(REPO))
    rng = np.random.default_rng(0)
    d, K = 5, 3
    prior = gmm.GaussianMixture(
        rng.dirichlet(np.ones(K)),
        2 * rng.standard_normal((K, d)),
        np.exp(rng.uniform(-3, 0, (K, d))),
        np.stack([gmm.random_rotation(d, rng) for _ in range(K)]),
    )
    x, v = 1.5 * rng.standard_normal((3, d)), rng.standard_normal((3, d))
    for sigma in (0.05, 0.7, 4.0):
        D, jv = prior.denoise_vjp(x, sigma, v)
        assert np.allclose(D, prior.denoise(x, sigma))
        fd = np.zeros_like(jv)
        for i in range(d):
            e = np.zeros(d)
            e[i] = 1e-6
            col = (prior.denoise(x + e, sigma) - prior.denoise(x - e, sigma)) / 2e-6  # J[:, :, i]
            fd[:, i] = (col * v).sum(axis=1)  # (J^T v)_i
        assert np.allclose(jv, fd, atol=1e-6)


def test_grader_posterior_matches_exact_samples_floor():
    """The grader's exact posterior, sampled exactly, scores at the finite-sample floor."""
    spec = importlib.util.spec_from_file_location("_dpis_grader", TASK_DIR / "grader.py")
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    prob, _ = g.exact_problem(LABEL, 0, TASK_DIR)
    rng = np.random.default_rng(1)
    xs = []
    for j in range(prob["n_meas"]):
        pi, mu, C = g.posterior(prob["prior"], prob["A"], prob["noise"], prob["y_meas"][j])
        z = rng.choice(len(pi), size=prob["n_per"], p=pi)
        L = [np.linalg.cholesky(c + 1e-12 * np.eye(len(c))) for c in C]
        xs.append(np.stack([mu[k] + L[k] @ rng.standard_normal(len(mu[k])) for k in z]))
    m = g.metrics_for(np.concatenate(xs), prob, LABEL)
    assert m["sw2"] < 0.04 and m["mean_err"] < 0.02 and m["consistency"] < 0.08


def test_final_instances_are_salted():
    """At the final evaluation hidden/salt.json is mixed into every seed, so the priors of the
    visible settings at the final seeds cannot be computed (and hard-coded) from repo/ alone."""
    spec = importlib.util.spec_from_file_location("_dpis_grader2", TASK_DIR / "grader.py")
    g = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(g)
    plain, _ = g.exact_problem(LABEL, 0, TASK_DIR)
    salted, _ = g.exact_problem(LABEL, 0, TASK_DIR, salted=True)
    assert (TASK_DIR / "hidden" / "salt.json").is_file()
    assert not (REPO / "salt.json").exists()
    assert not np.allclose(plain["prior"].mu, salted["prior"].mu)
    assert not np.allclose(plain["y_meas"], salted["y_meas"])
