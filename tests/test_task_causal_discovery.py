"""Trust tests for tasks/causal-discovery-discrete, with the static policy switched off
(``lint=False``): the task kit's child is what stops them.

learn_cpdag runs in a fresh kit child per data set that reads discover.py and graphs.py and
nothing else of the task folder: not the networks (the true graphs, hidden ones included), not
bn.py (which would rebuild the seeded column permutation), not the parent's command line (which
names the network). The parent reads the child's CPU time from outside and fails a call over
its limit. Nothing is measured inside the child, so global hooks gain nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from cheats import assert_anchored, run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = "causal-discovery-discrete"
LABEL = "asia-n1000"  # the quickest visible setting (8 variables)
HIDDEN = "sachs-n1000"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """import os
import sys

import numpy as np


def task_folder():
    # the workspace is on the child's sys.path (it imports discover.py from there)
    return next(p for p in sys.path if os.path.exists(os.path.join(p, "discover.py")))

"""

# 1. the true graph, straight from the network file (numpy's readers: no lint flags them)
READ_NETWORK = (
    HEAD
    + """
def learn_cpdag(data, cards):
    for name in ("sachs", "asia"):
        path = os.path.join(task_folder(), "networks", name + ".bif")
        if os.path.exists(path):
            np.fromfile(path, dtype=np.uint8)
    return np.zeros((data.shape[1], data.shape[1]))
"""
)

# 2. the harness's own reader and the seeded column permutation
IMPORT_BN = (
    HEAD
    + """
def learn_cpdag(data, cards):
    import bn

    net = bn.load_network("asia")
    return np.zeros((data.shape[1], data.shape[1]))
"""
)

# 3. the parent's command line names the network
PARENT_PROC = (
    HEAD
    + """
def learn_cpdag(data, cards):
    np.fromfile(f"/proc/{os.getppid()}/cmdline", dtype=np.uint8)
    return np.zeros((data.shape[1], data.shape[1]))
"""
)

# 4. writing a fixed file (the grader's graph utilities live in graphs.py)
WRITE_FIXED = (
    HEAD
    + """
def learn_cpdag(data, cards):
    with open(os.path.join(task_folder(), "graphs.py"), "a") as f:
        f.write("# patched")
    return np.zeros((data.shape[1], data.shape[1]))
"""
)

# 5. state kept between calls: each call gets a fresh child and a fresh scratch folder, so a
#    note left by the first data set is gone for the next (the run completes: nothing carried)
STATE_IN_SCRATCH = (
    HEAD
    + """
def learn_cpdag(data, cards):
    note = os.path.join(os.environ["TMPDIR"], "seen")
    if os.path.exists(note):
        raise RuntimeError("state survived between calls")
    with open(note, "w") as f:
        f.write("1")
    return np.zeros((data.shape[1], data.shape[1]))
"""
)
# ... and a note outside the scratch folder is refused
STATE_IN_TMP = (
    HEAD
    + """
def learn_cpdag(data, cards):
    with open("/tmp/causal-discovery-state", "w") as f:
        f.write("1")
    return np.zeros((data.shape[1], data.shape[1]))
"""
)

# 6. the CPU budget of a call
BUSY = (
    HEAD
    + """
def learn_cpdag(data, cards):
    while True:
        pass
"""
)

# 7. broken outputs: NaN, the wrong shape, a frame far larger than a graph
NAN = HEAD + "\ndef learn_cpdag(data, cards):\n    return np.full((data.shape[1],) * 2, np.nan)\n"
WRONG_SHAPE = HEAD + "\ndef learn_cpdag(data, cards):\n    return np.zeros((3, 3))\n"
HUGE = HEAD + "\ndef learn_cpdag(data, cards):\n    return np.zeros((3000, 3000))\n"


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_reading_the_network_file_is_stopped(task):
    err = run_cheat(task, LABEL, READ_NETWORK, lint=False)
    assert "policy violation" in err and "asia.bif" in err


@pytest.mark.slow
def test_reading_a_hidden_network_file_is_stopped(task):
    err = run_cheat(task, HIDDEN, READ_NETWORK, lint=False)
    assert "policy violation" in err and "sachs.bif" in err


@pytest.mark.slow
def test_the_harness_reader_is_out_of_reach(task):
    err = run_cheat(task, LABEL, IMPORT_BN, lint=False)
    assert "policy violation" in err and "bn.py" in err


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
def test_no_state_survives_between_calls(task):
    _, run = run_setting(task, LABEL, STATE_IN_SCRATCH, lint=False)
    assert run.error is None and run.metrics is not None, run.error
    err = run_cheat(task, LABEL, STATE_IN_TMP, lint=False)
    assert "policy violation" in err and "for writing" in err


@pytest.mark.slow
def test_a_call_over_its_cpu_limit_fails(task):
    err = run_cheat(task, LABEL, BUSY, lint=False)
    assert "time limit exceeded" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (NAN, "must return a 0/1 matrix"),
        (WRONG_SHAPE, "must return a (8, 8) matrix"),
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
    """Control: the reference (BOSS with BDeu) in the same child gives its anchored metrics."""
    assert_anchored(task, "boss_bdeu", [label], lint=False)
