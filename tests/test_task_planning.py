"""Trust tests for tasks/planning-trajectory-optimization: the planner runs in the task kit's
least-privileged child (it reads planner.py only, not envs.py), the parent owns the real system,
the model and the step counter, and the final evaluation's systems mix in a secret salt. Every
cheat runs through the real final evaluation with the static policy switched off
(``lint=False``), so what stops it is the boundary; plus quick checks of the grader on forged
records.

The rule "the planner must not simulate the dynamics itself" is gone from the scaffold: no
mechanism can tell a planner's own simulation from its optimizer's arithmetic (see the task's
README). ``test_self_simulating_planner_gain`` measures what such a planner gains.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat, run_setting

from mlsbench_env.evaluation import final_evaluation
from mlsbench_env.spec import load_task

TASK = "planning-trajectory-optimization"
LABEL = "pendulum-swingup"  # the quickest visible setting
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

PLANNER = """import numpy as np


class Planner:
    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng

    def plan(self, obs, t, model):
{body}
"""


def planner(body: str) -> str:
    return PLANNER.format(body="\n".join("        " + line for line in body.strip().splitlines()))


HONEST = "a = self.rng.uniform(-1, 1, (10, 5, 1))\nreturn a[int(np.argmax(model.rollout(a))), 0]"

IMPORTS_ENVS = planner("import envs\nreturn np.zeros(1)")
# the workspace's files by absolute path (the child's working folder is its scratch folder)
WS = "import os, taskkit\nws = os.path.dirname(os.path.dirname(taskkit.__file__))\n"
NP_FROMFILE = planner(
    WS + 'np.fromfile(os.path.join(ws, "envs.py"), dtype=np.uint8)\nreturn np.zeros(1)'
)
NP_LOAD = planner(
    WS + 'np.load(os.path.join(ws, "run.py"), allow_pickle=False)\nreturn np.zeros(1)'
)
# the parent's argv (which setting this is) through /proc: the parent's pid and every low pid
PARENT_ARGV = planner(
    """
import os
seen = []
for pid in [os.getppid(), *range(1, 200)]:
    if pid == os.getpid():
        continue
    try:
        seen.append(open("/proc/%d/cmdline" % pid, "rb").read())
    except OSError as e:
        pass
if any(b"run.py" in argv for argv in seen):
    raise RuntimeError("LEAK: read the parent's argv")
raise RuntimeError("no other process's cmdline readable (%d read)" % len(seen))
"""
)
WRITES_ENVS = planner(WS + 'open(os.path.join(ws, "envs.py"), "a").write("#")\nreturn np.zeros(1)')
WRITES_KIT = planner(WS + 'open(os.path.join(ws, "taskkit", "x.py"), "w")\nreturn np.zeros(1)')
# the whole budget spent, the child-side counter reset, one more step: the parent refuses it
BUDGET_OVERRUN = planner(
    "model.rollout(np.zeros((model.budget // 20, 20, 1)))\n"
    "model._used = 0\n"
    "model.rollout(np.zeros((1, 1, 1)))\n"
    "return np.zeros(1)"
)
# a raw frame straight to the pipe, larger than the whole budget's actions
RAW_OVERSIZED = planner(
    "import struct\n"
    "n = model.budget * 2\n"
    'model._conn.send_bytes(b"R" + struct.pack("<IIB", n, 1, 0) + bytes(8 * n))\n'
    "model._conn.recv_bytes()\n"
    "return np.zeros(1)"
)
NAN_ACTION = planner('return np.array([float("nan")])')
WRONG_SHAPE = planner("return np.zeros(3)")
HUGE_ACTION = planner("return np.zeros(10 ** 7)")

# A copy of the public envs.py's pendulum draws plus a seed search: which seed's initial state
# is the one observed? With it the planner would know the system's parameters and the process
# noise of the whole episode, without a model step.
SEED_GUESS = planner(
    """
for seed in range(1000):
    ss = np.random.SeedSequence([seed, 1, 20240611])
    _, rng_init, _ = (np.random.default_rng(s) for s in ss.spawn(3))
    x0 = np.array([np.pi + rng_init.uniform(-0.2, 0.2), rng_init.uniform(-0.2, 0.2)])
    if t == 0 and np.allclose(obs, x0, atol=0, rtol=0):
        raise RuntimeError("seed guessed: %d" % seed)
raise RuntimeError("no seed of the public draws matches the observed initial state")
"""
)

# The reacher's dynamics copied from envs.py, the two masses identified from one model rollout
# with returned states (8 model steps), then iCEM run on this private copy with 16 times the
# budget: the planner simulates the dynamics itself.
SELF_SIMULATION = """

class _OwnModel:
    def __init__(self, m1, m2, x, target, budget, max_horizon):
        self.m, self.x, self.target = (m1, m2), x, target
        self.budget = self.remaining = budget
        self.max_horizon = max_horizon

    def rollout(self, actions, full=False):
        self.remaining -= actions.shape[0] * actions.shape[1]
        x = np.broadcast_to(self.x, (actions.shape[0], 4)).copy()
        total = np.zeros(actions.shape[0])
        for k in range(actions.shape[1]):
            x, r = _step(x, actions[:, k], self.target, *self.m)
            total += r
        return total


def _step(x, a, tg, m1, m2):
    l1 = l2 = 0.5
    a = np.clip(a, -1.0, 1.0)
    q1, q2, dq1, dq2 = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    dx = l1 * np.cos(q1) + l2 * np.cos(q1 + q2) - tg[0]
    dy = l1 * np.sin(q1) + l2 * np.sin(q1 + q2) - tg[1]
    reward = -np.sqrt(dx * dx + dy * dy) - 0.05 * np.sum(a * a, axis=-1)
    lc1, lc2 = 0.5 * l1, 0.5 * l2
    i1, i2 = m1 * l1**2 / 12.0, m2 * l2**2 / 12.0
    c2, s2 = np.cos(q2), np.sin(q2)
    m12 = (m2 * lc2**2 + i2) + (m2 * l1 * lc2) * c2
    m11 = (m1 * lc1**2 + i1 + m2 * (l1**2 + lc2**2) + i2) + (2.0 * m2 * l1 * lc2) * c2
    m22 = m2 * lc2**2 + i2
    hh = (m2 * l1 * lc2) * s2
    tau = 4.0 * a
    rhs1 = tau[..., 0] + hh * (2.0 * dq1 + dq2) * dq2 - 0.5 * dq1
    rhs2 = tau[..., 1] - hh * dq1 * dq1 - 0.5 * dq2
    det = m11 * m22 - m12 * m12
    lim = 4.0 * np.pi
    dq1 = np.clip(dq1 + 0.05 * (m22 * rhs1 - m12 * rhs2) / det, -lim, lim)
    dq2 = np.clip(dq2 + 0.05 * (m11 * rhs2 - m12 * rhs1) / det, -lim, lim)
    return np.stack([q1 + 0.05 * dq1, q2 + 0.05 * dq2, dq1, dq2], axis=-1), reward


_ICEM = Planner


class Planner(_ICEM):
    def plan(self, obs, t, model):
        if not hasattr(self, "masses"):
            a = self.rng.uniform(-1, 1, (8, 1, 2))
            _, _, states = model.rollout(a, full=True)
            grid = np.linspace(0.85, 1.15, 301)
            m1, m2 = np.meshgrid(grid, grid, indexing="ij")
            err = 0.0
            for i in range(8):
                nxt, _ = _step(states[i, 0], a[i, 0], obs[4:], m1, m2)
                err = err + np.sum((nxt - states[i, 1]) ** 2, axis=-1)
            i, j = np.unravel_index(np.argmin(err), err.shape)
            self.masses = (grid[i], grid[j])
        own = _OwnModel(*self.masses, obs[:4], obs[4:], 16 * model.budget, model.max_horizon)
        return super().plan(obs, t, own)
"""


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


# ---------------------------------------------------------------- the boundary (quick)
def test_importing_envs_refused(task):
    """The planner's process cannot read envs.py: no copy of the dynamics through import."""
    err = run_cheat(task, LABEL, IMPORTS_ENVS, lint=False)
    assert "envs.py" in err and ("policy violation" in err or "Permission denied" in err), err


# ---------------------------------------------------------------- the boundary (slow)
@pytest.mark.slow
@pytest.mark.parametrize(
    "text, message",
    [
        (NP_FROMFILE, "envs.py"),
        (NP_LOAD, "run.py"),
        (WRITES_ENVS, "envs.py"),
        (WRITES_KIT, "x.py"),
    ],
    ids=["np-fromfile-envs", "np-load-run", "write-envs", "write-kit"],
)
def test_files_out_of_reach(task, text, message):
    err = run_cheat(task, LABEL, text, lint=False)
    assert message in err, err
    assert "policy violation" in err or "Permission denied" in err, err


@pytest.mark.slow
def test_parent_argv_out_of_reach(task):
    err = run_cheat(task, LABEL, PARENT_ARGV, lint=False)
    assert "no other process's cmdline readable (0 read)" in err, err


@pytest.mark.slow
def test_budget_overrun_refused_by_the_parent(task):
    """The child-side counter is the planner's to break; the parent's refuses the request."""
    err = run_cheat(task, LABEL, BUDGET_OVERRUN, lint=False)
    assert "BudgetExceeded" in err and "budget exceeded" in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, message",
    [
        (RAW_OVERSIZED, "over"),
        (NAN_ACTION, "non-finite action"),
        (WRONG_SHAPE, "expected 1 float64"),
        (HUGE_ACTION, "over"),
    ],
    ids=["raw-oversized-request", "nan-action", "wrong-shape-action", "huge-action"],
)
def test_bad_frames_fail(task, text, message):
    err = run_cheat(task, LABEL, text, lint=False)
    assert message in err, err


@pytest.mark.slow
def test_seed_guess_finds_nothing_at_the_final_evaluation(task):
    """Without the salt (a test run) the public draws give the seed away; with it (the final
    evaluation: the hidden setting's presence sends the secrets) no seed matches."""
    _, public = run_setting(task, LABEL, SEED_GUESS, lint=False)
    assert public.error and "seed guessed: 0" in public.error, public.error
    settings = [s for s in task.spec.settings if s.label in (LABEL, "acrobot-swingup")]
    (region,) = task.regions
    result = final_evaluation(
        task, {(region.file, region.index): SEED_GUESS}, {}, seeds=[0], settings=settings
    )
    final = next(r for r in result.runs if r.label == LABEL)
    assert final.metrics is None and "no seed of the public draws matches" in final.error, (
        final.error
    )


@pytest.mark.slow
def test_self_simulating_planner_gain(task):
    """The residual the README states: a planner that identifies the reacher's masses from one
    8-step rollout and runs iCEM on its own copy of the equations at 16x the budget is not
    stopped (its arithmetic is a planner's), and gains what 16x the budget buys iCEM: +7.7
    return on seed 0 (iCEM's spread over seeds there is 10.7). Pinned so that a leak that buys
    more shows."""
    icem = task.baseline_regions("icem")[("planner.py", 1)]
    _, honest = run_setting(task, "reacher-2link", icem)
    _, cheat = run_setting(task, "reacher-2link", icem + SELF_SIMULATION, lint=False)
    assert honest.error is None and cheat.error is None, (honest.error, cheat.error)
    gain = cheat.metrics["episode_return"] - honest.metrics["episode_return"]
    print(f"self-simulation gain on reacher-2link seed 0: {gain:+.1f} return")
    assert 0.0 < gain < 20.0, gain


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    """Honest-code control: iCEM on the quickest visible setting and the hidden one, with the
    final evaluation's secret salt (the hidden setting's presence sends it), reproduces its
    seed-0 anchors."""
    assert_anchored(task, "icem", [LABEL, "acrobot-swingup"])


# ---------------------------------------------------------------- the grader (quick)
def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grader():
    return _module("_pto_test_grader", TASK_DIR / "grader.py")


def _record(instance="public", salt=None, **kw):
    envs = _module("_pto_test_envs", TASK_DIR / "repo" / "envs.py")
    env = envs.Pendulum(0, salt)
    actions = np.tile([[0.5], [-0.5]], (env.episode_len // 2, 1))
    rec = {
        "harness_version": 2,
        "env": "pendulum",
        "seed": 0,
        "instance": instance,
        "status": "ok",
        "actions": actions.tolist(),
        "return": env.replay(actions),
        "steps_per_control": [env.budget] * env.episode_len,
        "requests_per_control": [3] * env.episode_len,
        "max_horizon_used": 20,
        "refused": 0,
        "total_model_steps": env.budget * env.episode_len,
    }
    rec.update(kw)
    return rec


def _grade(grader, tmp_path, rec):
    (tmp_path / "result.json").write_text(json.dumps(rec))
    return grader.grade(LABEL, 0, tmp_path, TASK_DIR)


def test_grader_accepts_a_valid_record(grader, tmp_path):
    rec = _record()
    assert _grade(grader, tmp_path, rec)["episode_return"] == rec["return"]


@pytest.mark.parametrize(
    "forged, message",
    [
        ({"steps_per_control": [1501] + [1500] * 199}, "budget exceeded"),
        ({"steps_per_control": [-1] + [1500] * 199}, "budget exceeded"),
        ({"requests_per_control": [-1] * 200}, "impossible"),
        ({"refused": -3}, "impossible"),
        ({"total_model_steps": 2}, "inconsistent"),
        ({"max_horizon_used": 61}, "max_horizon"),
        ({"return": 0.0}, "does not match"),
        ({"instance": "mine"}, "unknown instance"),
        ({"harness_version": 1}, "harness version"),
    ],
    ids=[
        "over-budget",
        "negative-steps",
        "negative-requests",
        "negative-refused",
        "total",
        "horizon",
        "return",
        "instance",
        "version",
    ],
)
def test_grader_refuses_forged_records(grader, tmp_path, forged, message):
    with pytest.raises(RuntimeError, match=message):
        _grade(grader, tmp_path, _record(**forged))


def test_grader_replays_the_final_instance_with_the_salt(grader, tmp_path):
    """A final-evaluation record is replayed on the salted system: the public system's return
    of the same actions does not match it."""
    salt = int((TASK_DIR / "hidden" / "salt.txt").read_text())
    final = _record("final", salt)
    assert _grade(grader, tmp_path, final)["episode_return"] == final["return"]
    public_return = _record()["return"]
    assert public_return != final["return"]
    with pytest.raises(RuntimeError, match="does not match"):
        _grade(grader, tmp_path, {**final, "return": public_return})
