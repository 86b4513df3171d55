"""Trust tests for tasks/climate-column-emulator: each way to cheat the fixed question (a model
above the parameter cap, training outside the fixed optimizer and epochs, reading the test
targets, a "column" emulator that looks at the other columns of its batch) fails the setting
with a clear message and scores 0; plus cheap unit checks of the grader.

The cheats are caught before or at the first training step (a spawned child that imports torch,
a few seconds each); the batch-mixing one trains a whole setting and is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "climate-column-emulator"
LABEL = "short"  # the cheapest visible setting
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, cfg, width=64):
        super().__init__()
        self.cfg = cfg
        d_in = cfg.n_in_profiles * cfg.n_levels + cfg.n_in_scalars
        self.body = nn.Sequential(nn.Linear(d_in, width), nn.GELU(),
                                  nn.Linear(width, cfg.n_out_profiles * cfg.n_levels + cfg.n_out_scalars))

    def split(self, y):
        n = self.cfg.n_out_profiles * self.cfg.n_levels
        return y[:, :n].reshape(y.shape[0], self.cfg.n_out_profiles, self.cfg.n_levels), y[:, n:]
"""

# 1. far more parameters than the cap (a 4096-wide MLP)
TOO_BIG = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        return self.split(self.body(torch.cat([x_prof.flatten(1), x_sca], 1)))


def build_model(cfg):
    return Net(cfg, width=4096)
"""
)

# 2. a lookup table hidden in a buffer (not a parameter): the cap counts buffers too
BIG_BUFFER = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        return self.split(self.body(torch.cat([x_prof.flatten(1), x_sca], 1)))


def build_model(cfg):
    net = Net(cfg)
    net.register_buffer("table", torch.zeros(2000, 123))
    return net
"""
)

# 3. training outside the fixed optimizer: extra in-place updates inside forward (more
#    "epochs" than the setting allows, as a hidden inner loop would need)
SIDE_TRAINING = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        if torch.is_grad_enabled():
            with torch.no_grad():
                for p in self.body.parameters():
                    p.mul_(0.999)
        return self.split(self.body(torch.cat([x_prof.flatten(1), x_sca], 1)))


def build_model(cfg):
    return Net(cfg)
"""
)

# 4. an optimizer of its own (pre-training in build_model for extra epochs)
OWN_OPTIMIZER = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        return self.split(self.body(torch.cat([x_prof.flatten(1), x_sca], 1)))


def build_model(cfg):
    net = Net(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    return net
"""
)

# 5. reading the test targets from disk (the grader's private file; torch.from_file is not
#    caught by every generic policy, the harness refuses it too)
READS_TARGETS = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        y = torch.from_file("../private/test_y.npy", shared=False, size=100, dtype=torch.uint8)
        return self.split(self.body(torch.cat([x_prof.flatten(1), x_sca], 1)))


def build_model(cfg):
    return Net(cfg)
"""
)

# 6. at prediction time each column borrows from the other columns of its batch
BATCH_MIXING = (
    HEAD
    + """
    def forward(self, x_prof, x_sca):
        y = self.body(torch.cat([x_prof.flatten(1), x_sca], 1))
        if not self.training:
            y = y + 0.5 * y.mean(dim=0, keepdim=True)
        return self.split(y)


def build_model(cfg):
    return Net(cfg)
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_parameter_cap_fails(task):
    err = run_cheat(task, LABEL, TOO_BIG)
    assert "parameter cap exceeded" in err, err


def test_training_outside_optimizer_fails(task):
    err = run_cheat(task, LABEL, SIDE_TRAINING)
    assert "changed outside the fixed optimizer" in err, err


@pytest.mark.slow
def test_buffer_counts_against_cap(task):
    err = run_cheat(task, LABEL, BIG_BUFFER)
    assert "parameter cap exceeded" in err, err


@pytest.mark.slow
def test_own_optimizer_fails(task):
    err = run_cheat(task, LABEL, OWN_OPTIMIZER)
    assert "optim" in err and "not allowed" in err, err


@pytest.mark.slow
def test_reading_test_targets_fails(task):
    err = run_cheat(task, LABEL, READS_TARGETS)
    assert "from_file" in err and "not allowed" in err, err


@pytest.mark.slow
def test_mixing_columns_of_a_batch_fails(task):
    err = run_cheat(task, LABEL, BATCH_MIXING)
    assert "answered the same columns differently" in err, err


# ---------------------------------------------------------------- cheap checks of the grader


def _load_grader():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_cce_grader", TASK_DIR / "grader.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_run(tmp_path, pred, **over):
    rec = dict(
        setting=LABEL,
        seed=0,
        status="ok",
        error=None,
        epochs=6,
        batch_size=32,
        steps=6 * (1920 // 32),
        n_params=1000,
    )
    rec.update(over)
    (tmp_path / "result.json").write_text(json.dumps(rec))
    np.save(tmp_path / "pred.npy", pred, allow_pickle=False)


def test_grader_scores_and_rejects(tmp_path):
    g = _load_grader()
    y = np.load(TASK_DIR / "private" / "test_y.npy").astype(np.float32)
    _fake_run(tmp_path, y)
    m = g.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert m["r2"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(0.0, abs=1e-9)
    _fake_run(tmp_path, np.zeros_like(y))  # the training mean: R^2 about 0
    m = g.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert -0.5 < m["r2"] < 0.05
    for over, msg in [
        (dict(n_params=60_001), "parameter cap"),
        (dict(epochs=7), "epochs"),
        (dict(steps=1), "epochs"),
        (dict(status="error", error="boom"), "boom"),
    ]:
        _fake_run(tmp_path, y, **over)
        with pytest.raises(ValueError, match=msg):
            g.grade(LABEL, 0, tmp_path, TASK_DIR)
    _fake_run(tmp_path, y[:-1])
    with pytest.raises(ValueError, match="shape"):
        g.grade(LABEL, 0, tmp_path, TASK_DIR)


def test_test_targets_not_in_workspace():
    repo = TASK_DIR / "repo"
    names = {p.name for p in repo.rglob("*")}
    assert "test_y.npy" not in names and "warm_test_y.npy" not in names
    assert not any("warm" in n for n in names)  # the hidden setting is not named in repo/


# ------------------------------------------- the boundary itself (the static policy switched off)
# Each cheat runs with lint=False: the lint would stop most of them first, and these tests check
# that the task kit's child (Landlock, its own uid, the guard) and the parent's own checks do.

PROBE = """import os

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d_in = cfg.n_in_profiles * cfg.n_levels + cfg.n_in_scalars
        d_out = cfg.n_out_profiles * cfg.n_levels + cfg.n_out_scalars
        self.body = nn.Sequential(nn.Linear(d_in, 64), nn.GELU(), nn.Linear(64, d_out))
        self.calls = 0

    def forward(self, x_prof, x_sca):
        y = self.body(torch.cat([x_prof.flatten(1), x_sca], 1))
        {forward}
        n = self.cfg.n_out_profiles * self.cfg.n_levels
        return y[:, :n].reshape(y.shape[0], self.cfg.n_out_profiles, -1), y[:, n:]


def build_model(cfg):
    {build}
    return Net(cfg)
"""


def probe(build: str = "pass", forward: str = "pass") -> str:
    return PROBE.replace("{build}", build).replace("{forward}", forward)


def test_reading_test_inputs_via_numpy_fails(task):
    # np.fromfile, which no lint flags: the training process may see the training columns only
    cheat = probe(build='np.fromfile(os.path.join(HERE, "data", "test_x.npy"), np.uint8)')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "test_x.npy" in err, err


@pytest.mark.slow
def test_reading_training_targets_via_open_fails(task):
    cheat = probe(build='open(os.path.join(HERE, "data", "train_y.npy"), "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "train_y.npy" in err, err


@pytest.mark.slow
def test_reading_parent_cmdline_fails(task):
    cheat = probe(build='open(f"/proc/{os.getppid()}/cmdline", "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err, err  # the guard


@pytest.mark.slow
def test_writing_a_fixed_file_fails(task):
    cheat = probe(build='open(os.path.join(HERE, "harness.py"), "a").write("# patched")')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "for writing" in err, err


@pytest.mark.slow
def test_parameter_changed_outside_optimizer_without_lint_fails(task):
    err = run_cheat(task, LABEL, SIDE_TRAINING, lint=False)
    assert "changed outside the fixed optimizer during step 0" in err, err


@pytest.mark.slow
def test_nan_output_fails(task):
    err = run_cheat(task, LABEL, probe(forward="y = y * float('nan')"), lint=False)
    assert "training loss is not finite at step 0" in err, err


@pytest.mark.slow
def test_wrongly_shaped_output_fails(task):
    err = run_cheat(task, LABEL, probe(forward="y = y[:, 1:]"), lint=False)
    assert "the model must return y_prof" in err, err


@pytest.mark.slow
def test_state_kept_between_prediction_calls_fails(task):
    cheat = probe(forward="self.calls += not self.training\n        y = y + 0.1 * self.calls")
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "answered the same columns differently" in err, err


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    assert_anchored(task, task.spec.reference_baseline, [LABEL], lint=False)
