"""Trust tests for tasks/graph-homophily-filter, through the real final evaluation with the
static policy switched off (``lint=False``): the task kit's least-privileged child and the
parent's checks are what stop each cheat, and the message names what happened.

The filter runs once per setting in a fresh process and is measured nowhere in that process
(the parent checks its raw output and trains the readout), so no cheat of the catalogue that
keeps state between calls or leaves a hook behind has anything to act on; the task counts no
budget beyond build_filter's 120 s."""

from __future__ import annotations

import pytest
from cheats import assert_anchored, run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = "graph-homophily-filter"
LABEL = "csbm-heterophilous"  # the quickest visible setting
HIDDEN = "dcsbm-3class-heterophilous"

HEAD = """import os

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))  # the task folder (filters.py's)


def sgc(adj, features):
    a = adj + sp.eye(adj.shape[0], format="csr")
    d = sp.diags(1.0 / np.sqrt(np.asarray(a.sum(axis=1)).ravel()))
    s = d @ a @ d
    return s @ (s @ features)

"""


def filter_with(body: str) -> str:
    """A default-like filter whose build_filter first runs ``body`` (indented 4)."""
    return (
        HEAD
        + "\ndef build_filter(adj, features, train_idx, train_labels, num_classes):\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines())
        + '    return {"bases": [sgc(adj, features)], "coef_init": [1.0], "learn_coef": False}\n'
    )


def returning(expr: str) -> str:
    """A filter that returns ``expr`` (with h = the SGC output)."""
    return (
        HEAD
        + "\ndef build_filter(adj, features, train_idx, train_labels, num_classes):\n"
        + "    h = sgc(adj, features)\n"
        + f"    return {expr}\n"
    )


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


# ------------------------------------------------------------------ files and processes
@pytest.mark.parametrize(
    "body",
    [
        'open(os.path.join(HERE, "csbm.py")).read()',
        'np.fromfile(os.path.join(HERE, "settings.py"), dtype=np.uint8)',
        'np.load(os.path.join(HERE, "readout.py"), allow_pickle=True)',
        'np.loadtxt(os.path.join(HERE, "harness.py"), dtype=str, delimiter="\\x00")',
    ],
    ids=["open-generator", "np.fromfile", "np.load", "np.loadtxt"],
)
def test_reading_a_fixed_file_of_the_task_fails(task, body):
    err = run_cheat(task, LABEL, filter_with(body), lint=False)
    assert "policy violation" in err and "may read only" in err


@pytest.mark.slow
def test_reading_the_hidden_generator_fails(task):
    """At the final evaluation the hidden generator lies next to filters.py."""
    result, run = run_setting(
        task, HIDDEN, filter_with('open(os.path.join(HERE, "dcsbm.py")).read()'), lint=False
    )
    assert run.metrics is None and "policy violation" in run.error and "dcsbm.py" in run.error


@pytest.mark.parametrize(
    "body",
    [
        'open(f"/proc/{os.getppid()}/cmdline").read()',
        'open(f"/proc/{os.getppid()}/environ").read()',
    ],
    ids=["cmdline", "environ"],
)
def test_reading_the_parents_proc_entries_fails(task, body):
    """The parent's /proc entries are out of the child's reach (Landlock grants only the
    child's own; the sandbox's process view may not show the parent at all)."""
    err = run_cheat(task, LABEL, filter_with(body), lint=False)
    assert "/proc/" in err
    assert any(m in err for m in ("Permission denied", "No such file", "policy violation"))


@pytest.mark.parametrize(
    "body",
    [
        'open(os.path.join(HERE, "readout.py"), "a").write("# planted")',
        'open("/tmp/planted.txt", "w").write("x")',
    ],
    ids=["fixed-file", "outside-scratch"],
)
def test_writing_outside_the_scratch_folder_fails(task, body):
    err = run_cheat(task, LABEL, filter_with(body), lint=False)
    assert "policy violation" in err and "for writing" in err


def test_starting_a_process_fails(task):
    body = '__import__("subprocess").run(["cat", os.path.join(HERE, "csbm.py")])'
    err = run_cheat(task, LABEL, filter_with(body), lint=False)
    assert "policy violation" in err and "subprocess.Popen" in err


# ------------------------------------------------------------------ outputs
@pytest.mark.parametrize(
    "expr, message",
    [
        ('{"bases": [h * np.nan], "coef_init": [1.0], "learn_coef": False}', "NaN or inf"),
        ('{"bases": [h[:-1]], "coef_init": [1.0], "learn_coef": False}', "shape (n="),
        ('{"bases": [sp.csr_matrix(h)], "coef_init": [1.0], "learn_coef": False}', "dense"),
        ('{"bases": [h[:, :1]] * 33, "coef_init": [1.0] * 33, "learn_coef": False}', "1..32"),
        ('{"bases": [np.tile(h, 5)], "coef_init": [1.0], "learn_coef": False}', "f <= 256"),
        ('{"bases": [h, h], "coef_init": [1.0], "learn_coef": False}', "2 floats"),
        ('{"bases": [h], "coef_init": [np.inf], "learn_coef": False}', "finite"),
        ('{"bases": [h], "coef_init": [1.0]}', "exactly the keys"),
    ],
    ids=["nan", "rows", "sparse", "33-bases", "wide", "coef-count", "coef-inf", "keys"],
)
def test_malformed_outputs_fail_with_the_rule_broken(task, expr, message):
    err = run_cheat(task, LABEL, returning(expr), lint=False)
    assert message in err


@pytest.mark.slow
def test_an_output_larger_than_the_limits_allow_is_refused_by_its_size(task):
    """32 bases of 256 columns pass the child's own checks; the parent refuses the frame."""
    expr = '{"bases": [np.tile(h, 4)] * 32, "coef_init": [1.0] * 32, "learn_coef": True}'
    err = run_cheat(task, LABEL, returning(expr), lint=False)
    assert "sent a message over" in err


@pytest.mark.slow
def test_a_filter_that_does_not_return_in_time_fails(task):
    err = run_cheat(task, LABEL, filter_with('__import__("time").sleep(200)'), lint=False)
    assert "did not answer within 120 s" in err


# ------------------------------------------------------------------ honest code
@pytest.mark.slow
@pytest.mark.parametrize("name", ["default", "chebnetii"])
def test_honest_filters_score_as_anchored(task, name):
    """The default and the reference on the quickest visible and the hidden setting, seed 0,
    give the anchors' accuracies (run together: the hidden setting brings the data salt)."""
    assert_anchored(task, name, [LABEL, HIDDEN], rel=1e-6)
