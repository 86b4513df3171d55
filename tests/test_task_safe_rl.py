"""Cheat tests for safe-rl-constraint-handling: PPO, its rollouts and the environments run in
the harness's parent process and only the constraint handler runs in the task kit's child
(constraint.py is all it reads), so changing PPO from the handler, reading the hidden layout or
other fixed files and broken handler outputs all fail the setting (score 0) with a clear message,
with the static policy off; the parent counts every environment step."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cheats import run_cheat, run_setting

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


def test_patching_ppo_without_the_lint_fails(task):
    """The handler's process cannot even import ppo.py: PPO runs in the parent."""
    err = run_cheat(task, LABEL, PATCH_PPO, lint=False)
    assert "ppo.py" in err and ("policy violation" in err or "sandbox violation" in err), err


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


def _combine(code: str) -> str:
    """A handler whose combine() returns ``code`` (numpy as np, adv_r, adv_c in scope)."""
    return (
        HEAD
        + f"""
    def update(self, ep_costs, ep_returns):
        pass

    def combine(self, adv_r, adv_c):
        return {code}
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
        (LABEL, 'open(os.path.join(ws, "harness.py")).read()', "harness.py"),
        (LABEL, 'open(os.path.join(ws, "ppo.py"), "a")', "for writing"),
        (LABEL, 'open(f"/proc/{os.getppid()}/cmdline").read()', "other processes"),
    ],
    ids=[
        "np-fromfile-hidden-layout",
        "np-load-settings",
        "open-env",
        "open-harness",
        "write-ppo",
        "parent-cmdline",
    ],
)
def test_boundary_without_the_lint(task, label, code, message):
    """With the static policy off, the kit's child refuses the read or write itself."""
    err = run_cheat(task, label, _opens(code), lint=False)
    assert message in err and ("policy violation" in err or "sandbox violation" in err), err


@pytest.mark.slow
@pytest.mark.parametrize(
    "code, message",
    [
        ("adv_r * np.nan", "finite advantages (got NaN or inf)"),
        # numpy patched in the handler's own process: the parent checks the raw bytes itself
        ("(setattr(np, 'isfinite', lambda x: np.True_), adv_r * np.inf)[1]", "got NaN or inf"),
        ("adv_r[:100]", "must return 3200 finite advantages, got 100 values"),
        ("np.zeros((100, 2))", "must return 3200 finite advantages, got 200 values"),
        ("np.zeros(10**7)", "over 25601 bytes"),
    ],
    ids=["nan", "patched-isfinite", "short", "wrong-shape", "huge"],
)
def test_broken_advantages_fail(task, code, message):
    err = run_cheat(task, LABEL, _combine(code), lint=False)
    assert message in err, err


# the handler patches PPO wherever its process could reach it (ppo in sys.modules, numpy
# functions PPO calls); PPO runs in the parent, so the run scores exactly as pid_lag anchored
PATCH_GAINS_NOTHING = """
import sys

if "ppo" in sys.modules:
    sys.modules["ppo"].EPOCHS = 50
    sys.modules["ppo"].MINIBATCHES = 1
np.all = lambda *a, **k: True
np.isfinite = lambda x: x == x
np.zeros_like = lambda x, *a, **k: x * 0.0 + 1.0
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "label, prefix, lint",
    [(LABEL, PATCH_GAINS_NOTHING, False), ("car-goal-cluster", "", True)],
    ids=["patch-gains-nothing", "honest-control-hidden"],
)
def test_reference_baseline_scores_as_anchored(task, label, prefix, lint):
    """Honest control (pid_lag on the hidden setting) and the handler's global patches of its
    own process (with the lint off): both score pid_lag's anchored seed-0 value exactly."""
    anchors = json.loads((TASK_DIR / "anchors.json").read_text())["results"]
    (text,) = task.baseline_regions("pid_lag").values()
    text = prefix + text
    _, run = run_setting(task, label, text, lint=lint)
    assert run.error is None, run.error
    assert run.metrics["safe_return"] == anchors["pid_lag"][label]["safe_return"][0]


# --- the parent's step counter. From the handler, the extra rollout cannot even be asked for
# (ppo.py is unreadable in its process); a changed ppo.py (what a workspace run by hand could
# have: the final evaluation restores every fixed file) is refused by the parent's counter.
EXTRA_ROLLOUT = """
import ppo as _p
_orig = _p.train
def train(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates, seed, log=None):
    return _orig(step, reset, handler, obs_dim, act_dim, n_envs, horizon, updates + 1, seed, log)
_p.train = train
"""


def _tiny_run(tmp_path, constraint_extra="", ppo_edit=None):
    work = tmp_path / "repo"
    for rel, src in load_task(TASK).scaffold_files().items():  # repo/ and the task kit
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / rel)
    (work / "constraint.py").write_text((work / "constraint.py").read_text() + constraint_extra)
    if ppo_edit:
        old, new = ppo_edit
        text = (work / "ppo.py").read_text()
        assert old in text
        (work / "ppo.py").write_text(text.replace(old, new))
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
    rec = _tiny_run(tmp_path)
    assert rec["status"] == "ok", rec["error"]
    assert rec["env_steps"] == 2 * 10 * 4 and rec["resets"] == 2 and rec["refused"] == 0
    assert len(rec["eval_returns"]) == 4
    assert rec["isolation"] in ("landlock", "uid", "nocaps", "none")
    assert rec["handler_cpu_s"] >= 0


@pytest.mark.slow
def test_extra_rollout_from_the_handler_fails(tmp_path):
    rec = _tiny_run(tmp_path, constraint_extra=EXTRA_ROLLOUT)
    assert rec["status"] == "failed" and "ppo.py" in rec["error"], rec["error"]
    assert rec["env_steps"] == 0  # the handler is built before the first rollout


@pytest.mark.slow
def test_changed_ppo_extra_rollout_refused(tmp_path):
    rec = _tiny_run(
        tmp_path, ppo_edit=("for it in range(updates):", "for it in range(updates + 1):")
    )
    assert rec["status"] == "failed" and rec["refused"] == 1
    assert "step budget" in rec["error"], rec["error"]
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
        ({"eval_costs": [10.0] * 63 + [201.0]}, "impossible"),
        ({"eval_costs": [10.0] * 63 + [-1.0]}, "impossible"),
        ({"eval_returns": [10.0] * 63 + [231.0]}, "impossible"),
    ]:
        (tmp_path / "run.json").write_text(json.dumps(dict(base, **bad)))
        with pytest.raises(ValueError, match=msg):
            grader.grade(LABEL, 0, tmp_path, TASK_DIR)
