"""Trust tests for tasks/diffusion-prior-inverse-solver: every way to cheat the NFE budget or read
the prior's parameters (with which the posterior would be trivial) fails the setting (score 0)
with a clear message."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from cheats import run_cheat

from mlsbench_env.spec import load_task

TASK = "diffusion-prior-inverse-solver"
LABEL = "inpaint-32d-s0.05-nfe40"  # the cheapest visible setting
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK
REPO = TASK_DIR / "repo"

HEAD = """import math

import numpy as np

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

# 3b. ... or straight from the files
READ_PRIOR_FILE = (
    HEAD
    + """
RAW = np.genfromtxt("problems.py", dtype=str, delimiter="\\n")
SRC = open("gmm.py").read()


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


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_more_denoiser_calls_than_the_budget_fails(task):
    err = run_cheat(task, LABEL, EXTRA_DENOISE)
    assert "NFE budget exceeded" in err and "1 refused" in err


def test_backward_passes_count_against_the_budget(task):
    err = run_cheat(task, LABEL, EXTRA_VJP)
    assert "NFE budget exceeded" in err


@pytest.mark.parametrize("text", [READ_PRIOR_IMPORT, READ_PRIOR_FILE], ids=["import", "file"])
def test_reading_the_prior_is_refused(task, text):
    err = run_cheat(task, LABEL, text)
    assert "policy" in err


def test_the_model_proxy_holds_no_prior(task):
    err = run_cheat(task, LABEL, READ_PRIOR_MODEL)
    assert "the solver raised" in err and "AttributeError" in err


def test_unknown_requests_to_the_parent_fail_the_run(task):
    err = run_cheat(task, LABEL, RAW_PIPE)
    assert "protocol error: unknown message kind" in err


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
