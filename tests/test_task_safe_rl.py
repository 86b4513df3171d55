"""Cheat tests for safe-rl-constraint-handling: more environment steps than the budget, reading
the hidden layout and changing PPO outside the editable component all fail the setting (score 0)
with a clear message."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cheats import run_cheat

from mlsbench_env.spec import load_task

TASK = "safe-rl-constraint-handling"
LABEL = "point-goal"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """

class ConstraintHandler:
    def __init__(self, cost_limit, num_updates):
        self.cost_limit = float(cost_limit)
"""

# changing PPO (more epochs, a bigger budget) through the harness's modules: refused statically
PATCH_PPO = """
import ppo

ppo.EPOCHS = 50


class ConstraintHandler:
    def __init__(self, cost_limit, num_updates):
        self.cost_limit = float(cost_limit)

    def update(self, ep_costs, ep_returns):
        pass

    def combine(self, adv_r, adv_c):
        return adv_r
"""

# reading the hidden layout's spec through a numpy reader: the static policy or, failing
# that, the child's audit hook stops it
READ_HIDDEN = (
    HEAD
    + """        self.spec = np.lib.npyio.NpzFile("car-goal-cluster.json")

    def update(self, ep_costs, ep_returns):
        pass

    def combine(self, adv_r, adv_c):
        return adv_r
"""
)

READ_SETTINGS_PLAIN = (
    HEAD
    + """        with open("settings.py") as f:
            self.text = f.read()

    def update(self, ep_costs, ep_returns):
        pass

    def combine(self, adv_r, adv_c):
        return adv_r
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_patching_ppo_refused(task):
    err = run_cheat(task, LABEL, PATCH_PPO)
    assert "policy" in err and "ppo" in err, err


def test_plain_open_refused(task):
    err = run_cheat(task, LABEL, READ_SETTINGS_PLAIN)
    assert "policy" in err, err


def test_reading_hidden_layout_fails(task):
    err = run_cheat(task, LABEL, READ_HIDDEN)
    assert ("sandbox violation" in err and "car-goal-cluster.json" in err) or "file I/O" in err, err


def _opens(code: str) -> str:
    """A handler whose constructor runs ``code`` (the workspace is the folder above taskkit)."""
    return (
        HEAD
        + f"""        import os, taskkit
        ws = os.path.dirname(os.path.dirname(taskkit.__file__))
        {code}

    def update(self, ep_costs, ep_returns):
        pass

    def combine(self, adv_r, adv_c):
        return adv_r
"""
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "label, code, message",
    [
        (
            "car-goal-cluster",
            'np.fromfile(os.path.join(ws, "car-goal-cluster.json"), np.uint8)',
            "car-goal-cluster.json",
        ),
        (LABEL, 'np.load(os.path.join(ws, "settings.py"))', "settings.py"),
        (LABEL, 'open(os.path.join(ws, "env.py")).read()', "env.py"),
        (LABEL, 'open(os.path.join(ws, "ppo.py"), "a")', "for writing"),
    ],
    ids=["np-fromfile-hidden-layout", "np-load-settings", "open-env", "write-ppo"],
)
def test_boundary_without_the_lint(task, label, code, message):
    """With the static policy off, the kit's child refuses the read or write itself."""
    err = run_cheat(task, label, _opens(code), lint=False)
    assert message in err and ("policy violation" in err or "sandbox violation" in err), err


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known failure: the handler runs in the learner's process, so it can change the "
    "fixed PPO (ppo.EPOCHS); only the lint stops it. Fix: PPO in the parent or a trusted child, "
    "the handler alone in the kit's child (update/combine as frames)",
)
def test_patching_ppo_without_the_lint_fails(task):
    run_cheat(task, LABEL, PATCH_PPO, lint=False)


# --- the parent's step counter, exercised with a learner whose fixed PPO was altered to take
# one rollout more than the budget (what a changed ppo.py would do): the parent refuses it and
# the grader fails the run.
EXTRA_ROLLOUT = """
import ppo as _p
_orig = _p.train
def train(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates, seed, log=None):
    return _orig(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates + 1, seed, log)
_p.train = train
"""


def _tiny_run(tmp_path, patch_ppo):
    work = tmp_path / "repo"
    for rel, src in load_task(TASK).scaffold_files().items():  # repo/ and the task kit
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / rel)
    if patch_ppo:
        (work / "constraint.py").write_text((work / "constraint.py").read_text() + EXTRA_ROLLOUT)
    cfg = {
        "layout": {"body": "point", "arena": 2.0, "hazards": 6, "hazard_radius": 0.35},
        "cost_limit": 5.0,
        "n_envs": 4,
        "horizon": 10,
        "updates": 2,
        "eval_episodes": 4,
    }
    (work / "tiny.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    env = dict(os.environ, MLSBENCH_SEED="0", MLSBENCH_OUT=str(out), OMP_NUM_THREADS="1")
    subprocess.run(
        [sys.executable, "run.py", "--spec", "tiny.json"],
        cwd=work,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    return json.loads((out / "run.json").read_text())


@pytest.mark.slow
def test_parent_counts_steps(tmp_path):
    rec = _tiny_run(tmp_path, patch_ppo=False)
    assert rec["status"] == "ok", rec["error"]
    assert rec["env_steps"] == 2 * 10 * 4 and rec["resets"] == 2 and rec["refused"] == 0
    assert len(rec["eval_returns"]) == 4


@pytest.mark.slow
def test_extra_rollout_refused(tmp_path):
    rec = _tiny_run(tmp_path, patch_ppo=True)
    assert rec["status"] == "failed" and rec["refused"] >= 1
    assert "step budget" in rec["error"] or "more environment steps" in rec["error"], rec["error"]
    assert rec["env_steps"] == 2 * 10 * 4  # nothing past the budget was served


def test_grader_rejects_budget_and_violation(tmp_path):
    sys.path.insert(0, str(TASK_DIR))
    try:
        import grader
    finally:
        sys.path.pop(0)
    base = {
        "setting": LABEL,
        "seed": 0,
        "violation": None,
        "refused": 0,
        "status": "ok",
        "error": None,
        "env_steps": 128000,
        "resets": 40,
        "n_envs": 16,
        "horizon": 200,
        "cost_limit": 5.0,
        "eval_returns": [10.0] * 64,
        "eval_costs": [10.0] * 64,
    }
    (tmp_path / "run.json").write_text(json.dumps(base))
    m = grader.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert m["safe_return"] == pytest.approx(10.0 * 0.25)  # cost 2x the limit
    for bad, msg in [
        ({"refused": 3}, "step budget exceeded"),
        ({"env_steps": 131200}, "fixed budget"),
        ({"violation": "x"}, "sandbox violation"),
    ]:
        (tmp_path / "run.json").write_text(json.dumps(dict(base, **bad)))
        with pytest.raises(ValueError, match=msg):
            grader.grade(LABEL, 0, tmp_path, TASK_DIR)
