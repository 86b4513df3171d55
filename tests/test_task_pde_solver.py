"""Trust tests for tasks/pde-autoregressive-solver: each way to cheat the fixed question (a model
above the parameter cap, training outside the fixed optimizer, reading the hidden setting or the
solver, a surrogate that looks at the other trajectories of its batch, forged results) fails the
setting with a clear message and scores 0; plus cheap checks of the grader and an honest-code
control. The cheats run with the static policy off (lint=False) where they check the boundary."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = load_task("pde-autoregressive-solver")
QUICK = "advection-beta0.4"  # the cheapest data
HIDDEN = "burgers-shock"

PROBE = """import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Net(nn.Module):
    def __init__(self, cfg, width=16):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(cfg.t_in, width, 5, padding=2, padding_mode="circular"),
                                  nn.GELU(), nn.Conv1d(width, 1, 5, padding=2, padding_mode="circular"))

    def forward(self, u):
        {pre}
        y = u[:, -1] + self.conv(u).squeeze(1)
        {forward}
        return y


def build_model(cfg):
    {build}
    return Net(cfg)
"""


def probe(build: str = "pass", forward: str = "pass", pre: str = "pass") -> str:
    return PROBE.replace("{build}", build).replace("{forward}", forward).replace("{pre}", pre)


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(tmp_path, pred, **over):
    pde = _module(TASK.repo / "pde.py", "_pde_test_pde")
    rec = dict(
        setting=QUICK,
        spec=pde.SETTINGS[QUICK],
        seed=0,
        instance="public",
        batch=32,
        steps=200,
        error=None,
    )
    rec.update(over)
    if "rollout_error" not in rec:
        rec["rollout_error"] = pde.rollout_error(pred, _true())
    (tmp_path / "result.json").write_text(json.dumps(rec))
    np.save(tmp_path / "pred.npy", pred, allow_pickle=False)


def _true():
    pde = _module(TASK.repo / "pde.py", "_pde_test_pde")
    return pde.instance(QUICK, pde.SETTINGS[QUICK], 0, pde.PUBLIC_KEY, "test")[:, pde.T_IN :]


def test_the_grader_recomputes_the_rollout_error(tmp_path):
    grader = _module(TASK.root / "grader.py", "_pde_test_grader")
    true = _true()
    _fake_run(tmp_path, true)
    assert grader.grade(QUICK, 0, tmp_path, TASK.root) == {"rollout_rel_l2": 0.0}
    _fake_run(tmp_path, np.zeros_like(true))
    assert grader.grade(QUICK, 0, tmp_path, TASK.root)["rollout_rel_l2"] == pytest.approx(1.0)
    half = (0.5 * true).astype(np.float32)
    _fake_run(tmp_path, half)
    assert grader.grade(QUICK, 0, tmp_path, TASK.root)["rollout_rel_l2"] == pytest.approx(0.5)
    for over, msg in [
        (dict(rollout_error=0.01), "harness recorded"),
        (dict(steps=1000), "fixes 200 steps"),
        (dict(seed=1), "expected"),
        (dict(instance="mine"), "unknown instance"),
        (dict(error="boom"), "boom"),
    ]:
        _fake_run(tmp_path, half, **over)
        with pytest.raises(ValueError, match=msg):
            grader.grade(QUICK, 0, tmp_path, TASK.root)
    _fake_run(tmp_path, half[:-1], rollout_error=0.5)
    with pytest.raises(ValueError, match="shape"):
        grader.grade(QUICK, 0, tmp_path, TASK.root)


def test_the_hidden_setting_is_not_named_in_the_workspace():
    text = "".join(p.read_text() for p in TASK.repo.rglob("*.py"))
    assert "shock" not in text and "0.001" not in text


def test_parameter_cap_fails():
    err = run_cheat(TASK, QUICK, probe().replace("width=16", "width=16384"), lint=False)
    assert "parameter cap exceeded" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_a_buffer_counts_against_the_cap(dtype):
    # an integer buffer is not sent with the trained state; the child's count of the whole
    # state_dict still reaches the parent's cap check (there is no separate budget check)
    buffer = f"torch.zeros(2000, 64, dtype=torch.{dtype})"
    cheat = probe(build=f"net = Net(cfg)\n    net.register_buffer('t', {buffer})\n    return net")
    err = run_cheat(TASK, QUICK, cheat, lint=False)
    assert "parameter cap exceeded" in err, err


@pytest.mark.slow
def test_training_outside_the_optimizer_fails():
    forward = (
        "if torch.is_grad_enabled():\n            with torch.no_grad():\n"
        "                for p in self.parameters():\n                    p.mul_(0.999)"
    )
    err = run_cheat(TASK, QUICK, probe(pre=forward), lint=False)
    assert "changed outside the fixed optimizer during step 0" in err, err


@pytest.mark.slow
def test_mixing_the_trajectories_of_a_batch_fails():
    err = run_cheat(TASK, QUICK, probe(forward="y = y + 0.1 * y.mean(0, keepdim=True)"), lint=False)
    assert "answered the same trajectories differently" in err, err


@pytest.mark.slow
def test_non_finite_predictions_fail():
    err = run_cheat(TASK, QUICK, probe(forward="y = y * float('nan')"), lint=False)
    assert "training loss is not finite at step 0" in err, err


@pytest.mark.slow
def test_the_solver_and_the_hidden_setting_are_out_of_reach():
    err = run_cheat(TASK, HIDDEN, probe(build="import pde"), lint=False)
    assert "No module named 'pde'" in err or "violation" in err, err
    for name in ("burgers-shock.json", "instance_key.txt", "run.py"):
        cheat = probe(build=f"open(os.path.join(HERE, {name!r})).read()")
        err = run_cheat(TASK, HIDDEN, cheat, lint=False)
        assert "violation" in err or "Permission" in err, (name, err)


@pytest.mark.slow
def test_the_reference_scores_as_anchored_on_the_hidden_setting():
    # the hidden spec and the instance key travel only over the secrets channel
    assert_anchored(TASK, TASK.spec.reference_baseline, [HIDDEN], rel=0)
