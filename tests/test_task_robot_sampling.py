"""Trust tests for tasks/diffusion-robot-action-sampling: every way to exceed the per-chunk NFE
budget (extra calls, saving calls up across chunks, more samples per call, talking to the parent
behind the proxy), reading the denoiser's weights or the evaluation instances, or returning a
malformed chunk fails the setting (score 0) with a clear message. The cheats run with the static
policy off (``lint=False``): the task kit's child (it reads sampler.py and nothing else of the
task folder, cannot see the parent) and the parent's per-chunk NFE count are what stop them.
Nothing is measured in the child (the denoiser and the environments run in the parent), so global
hooks gain nothing; state kept between chunks cannot save NFE up (SAVE_UP)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "diffusion-robot-action-sampling"
LABEL = "reach-nfe2"  # the cheapest visible setting (16 chunks per episode, 2 NFE per chunk)
HIDDEN = "reach-wide-nfe3"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK
REPO = TASK_DIR / "repo"

HEAD = """import math
import os
import sys

import numpy as np


def task_folder():
    # the workspace is on the child's sys.path (it imports sampler.py from there)
    return next(p for p in sys.path if os.path.exists(os.path.join(p, "sampler.py")))

"""

# 1. one denoiser call too many for a chunk (the refusal is caught, the run goes on)
EXTRA_CALL = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    x = rng.standard_normal(shape)
    for i in range(nfe + 1):
        try:
            x = x - 0.1 * denoise(x, 0.5)
        except RuntimeError:
            pass
    return np.clip(x, -1, 1)
"""
)

# 2. saving the budget up: no call on even chunks, twice the budget on odd ones
SAVE_UP = (
    HEAD
    + """
STATE = {"k": 0}


def sample(denoise, shape, nfe, rng):
    STATE["k"] += 1
    x = rng.standard_normal(shape)
    if STATE["k"] % 2 == 1:
        return np.zeros(shape)
    for i in range(2 * nfe):
        t = 0.99 - 0.9 * i / (2 * nfe)
        x = math.cos(0.5 * math.pi * t) * 0 + x - 0.0 * denoise(x, t)
    return np.clip(x, -1, 1)
"""
)

# 3. more samples per call: two candidates per episode in one call, sent around the proxy's
#    shape check straight down the pipe
RAW_BIGGER_BATCH = (
    HEAD
    + """

def sample(denoise, shape, nfe, rng):
    x = rng.standard_normal((2 * shape[0], shape[1]))
    denoise._conn.send_bytes(b"D" + np.array([0.5]).tobytes() + x.tobytes())
    reply = denoise._conn.recv_bytes()
    return np.frombuffer(reply, dtype=np.float64, offset=1)[: shape[0] * shape[1]].reshape(shape)
"""
)

# 4. extra calls straight down the pipe (the proxy keeps no counter: the parent does)
RAW_EXTRA_CALLS = (
    HEAD
    + """

def sample(denoise, shape, nfe, rng):
    x = rng.standard_normal(shape)
    for i in range(nfe + 2):
        denoise._conn.send_bytes(b"D" + np.array([0.5]).tobytes() + x.tobytes())
        denoise._conn.recv_bytes()
    return np.zeros(shape)
"""
)

# 5. reading the denoiser's weights to evaluate the network for free (np.memmap, np.load: no
#    lint flags them)
READ_WEIGHTS = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    w = np.memmap(os.path.join(task_folder(), "weights", "reach.npz"), dtype=np.uint8, mode="r")
    return np.zeros(shape)
"""
)

# 6. a broken submission: chunks of the wrong shape
WRONG_SHAPE = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    return np.zeros((shape[0], shape[1] + 1))
"""
)


# 7. the final evaluation's secrets (the salt draws the episodes' start instances) and the
#    parent's command line; reading the environments' code; writing a fixed file
READ_SECRETS = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    here = task_folder()
    for name in ("salt.json", "extra_problem.json"):
        for folder in (here, os.path.join(here, "..", "hidden")):
            np.load(os.path.join(folder, name), allow_pickle=False)
    return np.zeros(shape)
"""
)
PARENT_PROC = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    np.fromfile(f"/proc/{os.getppid()}/cmdline", dtype=np.uint8)
    return np.zeros(shape)
"""
)
READ_ENVS = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    import envs

    return np.zeros(shape)
"""
)
WRITE_FIXED = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    with open(os.path.join(task_folder(), "denoiser.py"), "a") as f:
        f.write("# patched")
    return np.zeros(shape)
"""
)

# 8. NaN actions; a frame far larger than a chunk
NAN = HEAD + "\ndef sample(denoise, shape, nfe, rng):\n    return np.full(shape, np.nan)\n"
HUGE = (
    HEAD
    + """
def sample(denoise, shape, nfe, rng):
    denoise._conn.send_bytes(b"R" + bytes(64 * shape[0] * shape[1]))
    return np.zeros(shape)
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_extra_call_fails(task):
    err = run_cheat(task, LABEL, EXTRA_CALL, lint=False)
    assert "NFE budget exceeded" in err and "chunk 1" in err


def test_budget_cannot_be_saved_up_across_chunks(task):
    err = run_cheat(task, LABEL, SAVE_UP, lint=False)
    assert "NFE budget exceeded" in err and "chunk 2" in err


@pytest.mark.slow
def test_more_samples_per_call_fails(task):
    err = run_cheat(task, LABEL, RAW_BIGGER_BATCH, lint=False)
    assert "sent a message over" in err


@pytest.mark.slow
def test_calls_behind_the_proxy_are_counted(task):
    err = run_cheat(task, LABEL, RAW_EXTRA_CALLS, lint=False)
    assert "NFE budget exceeded" in err


@pytest.mark.slow
def test_reading_the_weights_is_stopped(task):
    err = run_cheat(task, LABEL, READ_WEIGHTS, lint=False)
    assert "policy violation" in err and "reach.npz" in err


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


def test_the_environments_code_is_out_of_reach(task):
    err = run_cheat(task, LABEL, READ_ENVS, lint=False)
    assert "policy violation" in err and "envs.py" in err


@pytest.mark.slow
def test_writing_a_fixed_file_is_stopped(task):
    err = run_cheat(task, LABEL, WRITE_FIXED, lint=False)
    assert "policy violation" in err and "for writing" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [(NAN, "NaN or inf actions"), (HUGE, "sent a message over")],
    ids=["nan", "huge"],
)
def test_broken_outputs_fail_clearly(task, text, message):
    err = run_cheat(task, LABEL, text, lint=False)
    assert message in err


@pytest.mark.slow
def test_honest_reference_scores_as_anchored(task):
    """Control: the reference (DPM-Solver++(2M)) in the same child gives its anchored metrics on
    the hidden setting (a run with a hidden setting is salted, as in calibration)."""
    assert_anchored(task, "dpmpp_2m", [HIDDEN], lint=False)


@pytest.mark.slow
def test_wrong_shape_fails_clearly(task):
    err = run_cheat(task, LABEL, WRONG_SHAPE, lint=False)
    assert "must return an array of shape" in err


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_observations_and_weights_never_enter_the_child():
    src = (REPO / "harness.py").read_text()
    child = src[src.index("def child_main") : src.index("def _chunk")]
    for word in ("obs", "model", "inst", "state", "denoiser", "Denoiser", "envs", "problems"):
        assert not re.search(rf"\b{word}\b", child), word
    run = (REPO / "run.py").read_text()
    assert "import denoiser" not in run.split("def main")[0]  # not imported in the spawn child


@pytest.mark.parametrize("setting", ["reach-nfe2", "reach-nfe4", "reach-wide-nfe3"])
def test_grader_scores_the_expert_near_one(tmp_path, setting):
    """The expert's own actions, replayed by the grader, succeed and cover both modes."""
    g = _load(TASK_DIR / "grader.py", "_drs_test_grader")
    env, inst, spec = g.problem(setting, 0, TASK_DIR, salted=False)
    envs = sys.modules["_drs_grader_envs"]
    n = inst[next(iter(inst))].shape[0]
    side = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    _, acts = envs.rollout_expert(env, inst, side)
    np.save(tmp_path / "actions.npy", acts.astype(np.float64))
    chunks = -(-env.max_steps // env.execute)
    (tmp_path / "run.json").write_text(
        json.dumps(
            dict(
                problem=spec["name"],
                seed=0,
                status="ok",
                refused_calls=0,
                nfe_budget=spec["nfe"],
                calls_per_chunk=[spec["nfe"]] * chunks,
                salted=False,
            )
        )
    )
    m = g.grade(setting, 0, tmp_path, TASK_DIR)
    assert m["success"] > 0.97 and m["mode_coverage"] > 0.95
    # the average of the two modes fails: the task is multimodal
    s = env.init_state(inst)
    mean_acts = []
    for _ in range(env.max_steps):
        a = 0.5 * (env.expert(s, inst, np.ones(n)) + env.expert(s, inst, -np.ones(n)))
        mean_acts.append(a)
        s = env.step(s, a)
    np.save(tmp_path / "actions.npy", np.stack(mean_acts, 1).astype(np.float64))
    assert g.grade(setting, 0, tmp_path, TASK_DIR)["success"] < 0.05
