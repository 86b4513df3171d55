"""Trust tests for tasks/bio-inverse-folding: each way to cheat the fixed question (a model above
the parameter cap or hiding a table in a buffer, training outside the fixed optimizer and
epochs, an optimizer of its own, reading the test sequences, a design that depends on the other
backbones of its batch) fails the setting with a clear message and scores 0; plus cheap unit
checks of the grader.

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

TASK = "bio-inverse-folding"
LABEL = "long"  # the cheapest visible setting (30 steps per epoch)
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, cfg, width=32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, cfg.n_aa))
"""

# 1. far more parameters than the cap
TOO_BIG = (
    HEAD
    + """
    def forward(self, x, seq=None):
        return self.body(x - x.mean(1, keepdim=True))


def build_model(cfg):
    return Net(cfg, width=8192)
"""
)

# 2. a lookup table hidden in a buffer (not a parameter): the cap counts buffers too
BIG_BUFFER = (
    HEAD
    + """
    def forward(self, x, seq=None):
        return self.body(x - x.mean(1, keepdim=True))


def build_model(cfg):
    net = Net(cfg)
    net.register_buffer("table", torch.zeros(600, 40, 20))
    return net
"""
)

# 3. training outside the fixed optimizer: in-place updates inside forward (extra "epochs")
SIDE_TRAINING = (
    HEAD
    + """
    def forward(self, x, seq=None):
        if torch.is_grad_enabled():
            with torch.no_grad():
                for p in self.body.parameters():
                    p.mul_(0.999)
        return self.body(x - x.mean(1, keepdim=True))


def build_model(cfg):
    return Net(cfg)
"""
)

# 4. an optimizer of its own
OWN_OPTIMIZER = (
    HEAD
    + """
    def forward(self, x, seq=None):
        return self.body(x - x.mean(1, keepdim=True))


def build_model(cfg):
    net = Net(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    return net
"""
)

# 5. reading the test sequences from disk (the grader's private file)
READS_SEQUENCES = (
    HEAD
    + """
    def forward(self, x, seq=None):
        s = torch.from_file("../private/long_test_seq.npy", shared=False, size=100, dtype=torch.uint8)
        return self.body(x - x.mean(1, keepdim=True))


def build_model(cfg):
    return Net(cfg)
"""
)

# 6. at design time each backbone borrows from the other backbones of its batch
BATCH_MIXING = (
    HEAD
    + """
    def forward(self, x, seq=None):
        y = self.body(x - x.mean(1, keepdim=True))
        if not self.training:
            y = y + 0.5 * y.mean(dim=0, keepdim=True)
        return y


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
def test_reading_test_sequences_fails(task):
    err = run_cheat(task, LABEL, READS_SEQUENCES)
    assert "from_file" in err and "not allowed" in err, err


@pytest.mark.slow
def test_mixing_backbones_of_a_batch_fails(task):
    err = run_cheat(task, LABEL, BATCH_MIXING)
    assert "answered the same backbones differently" in err, err


# ---------------------------------------------------------------- cheap checks of the grader


def _load_grader():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bif_grader", TASK_DIR / "grader.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_run(tmp_path, pred, **over):
    rec = dict(
        setting=LABEL,
        seed=0,
        status="ok",
        error=None,
        epochs=4,
        batch_size=8,
        steps=4 * (240 // 8),
        n_params=1000,
    )
    rec.update(over)
    (tmp_path / "result.json").write_text(json.dumps(rec))
    np.save(tmp_path / "pred.npy", pred, allow_pickle=False)


def test_grader_scores_and_rejects(tmp_path):
    g = _load_grader()
    seq = np.load(TASK_DIR / "private" / "long_test_seq.npy").astype(np.int64)
    perfect = np.full(seq.shape + (20,), -30.0, np.float32)
    np.put_along_axis(perfect, seq[..., None], 0.0, -1)
    _fake_run(tmp_path, perfect)
    m = g.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert m["recovery"] == pytest.approx(1.0) and m["perplexity"] == pytest.approx(1.0, abs=1e-6)
    _fake_run(tmp_path, np.zeros(seq.shape + (20,), np.float32))  # uniform: perplexity 20
    m = g.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert m["perplexity"] == pytest.approx(20.0)
    for over, msg in [
        (dict(n_params=100_001), "parameter cap"),
        (dict(epochs=7), "epochs"),
        (dict(steps=1), "epochs"),
        (dict(status="error", error="boom"), "boom"),
    ]:
        _fake_run(tmp_path, perfect, **over)
        with pytest.raises(ValueError, match=msg):
            g.grade(LABEL, 0, tmp_path, TASK_DIR)
    _fake_run(tmp_path, perfect[:-1])
    with pytest.raises(ValueError, match="shape"):
        g.grade(LABEL, 0, tmp_path, TASK_DIR)


def test_test_sequences_not_in_workspace():
    repo = TASK_DIR / "repo"
    names = {p.name for p in repo.rglob("*")}
    assert not any(n.endswith("test_seq.npy") for n in names)
    assert not any(
        "fold_test" in n or "held-out" in n for n in names
    )  # the hidden setting is not named


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
        self.body = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, cfg.n_aa))
        self.calls = 0

    def forward(self, x, seq=None):
        y = self.body(x - x.mean(1, keepdim=True))
        {forward}
        return y


def build_model(cfg):
    {build}
    return Net(cfg)
"""


def probe(build: str = "pass", forward: str = "pass") -> str:
    return PROBE.replace("{build}", build).replace("{forward}", forward)


def test_reading_training_sequences_via_numpy_fails(task):
    # np.load, which no lint flags: a design process that memorizes the training sequences
    cheat = probe(build='np.load(os.path.join(HERE, "data", "long_train_seq.npy"))')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "long_train_seq.npy" in err, err


@pytest.mark.slow
def test_reading_test_backbones_via_open_fails(task):
    cheat = probe(build='open(os.path.join(HERE, "data", "long_test_x.npy"), "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "long_test_x.npy" in err, err


@pytest.mark.slow
def test_reading_parent_cmdline_fails(task):
    cheat = probe(build='open(f"/proc/{os.getppid()}/cmdline", "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err, err  # the guard


@pytest.mark.slow
def test_writing_a_fixed_file_fails(task):
    cheat = probe(build='open(os.path.join(HERE, "settings.py"), "a").write("EPOCHS = 99")')
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
    err = run_cheat(task, LABEL, probe(forward="y = y[:, :-1]"), lint=False)
    assert "must return logits of shape" in err, err


@pytest.mark.slow
def test_state_kept_between_design_calls_fails(task):
    # each call at design time tilts its answer (a shift of every logit alike would cancel in
    # log_softmax): the parent's re-ask sees another answer
    tilt = "y = y + 0.1 * self.calls * torch.arange(20.0)"
    cheat = probe(forward=f"self.calls += not self.training\n        {tilt}")
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "answered the same backbones differently" in err, err


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    assert_anchored(task, task.spec.reference_baseline, ["long"], lint=False)
