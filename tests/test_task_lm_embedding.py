"""Trust tests for tasks/lm-embedding-strategy: each way to cheat the fixed question (an embedding
that looks at later bytes, one that keeps state between calls, more parameters than the cap,
training outside the fixed optimizer, reading the validation text) fails the setting with a
clear message and scores 0.

Every cheat is caught before or at the first training step, so each test costs a few seconds
(one spawned child that imports torch), except the slow one, which trains a full setting with a
model that behaves causally on prefixes but mixes the windows of a batch at evaluation.
"""

from __future__ import annotations

import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "lm-embedding-strategy"
LABEL = "d64-l2-ctx64"  # the cheapest visible setting

HEAD = """import math

import torch
import torch.nn as nn


class Embedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)

    def attention_positions(self, T):
        return None, None

    def output_weight(self):
        return self.tok.weight
"""

# 1. a "bigram" embedding that uses the NEXT byte (the target of position t)
LOOKAHEAD = (
    HEAD
    + """
    def forward(self, idx):
        nxt = torch.roll(idx, shifts=-1, dims=1)
        pos = torch.arange(idx.shape[1])
        return self.tok(idx) + self.tok(nxt) + self.pos(pos), None
"""
)

# 2. state kept between calls: the previous call's input (e.g. the whole window) is reused
STATEFUL = (
    HEAD
    + """
    def forward(self, idx):
        prev = getattr(self, "last", None)
        self.last = idx.detach()
        pos = torch.arange(idx.shape[1])
        x = self.tok(idx) + self.pos(pos)
        if prev is not None and prev.shape[0] == idx.shape[0] and prev.shape[1] > idx.shape[1]:
            x = x + self.tok(prev[:, 1: idx.shape[1] + 1])
        return x, None
"""
)

# 3. a hashed table far beyond the parameter budget
TOO_BIG = (
    HEAD.replace(
        "        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)\n",
        "        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)\n"
        "        self.big = nn.Embedding(65536, cfg.d_model)\n",
    )
    + """
    def forward(self, idx):
        prev = torch.cat([torch.zeros_like(idx[:, :1]), idx[:, :-1]], dim=1)
        pos = torch.arange(idx.shape[1])
        return self.tok(idx) + self.big(prev * 256 + idx) + self.pos(pos), None
"""
)

# 4. the validation play read from disk during training (torch.from_file is not caught by the
#    generic policy; the harness refuses it)
READS_VALID = (
    HEAD
    + """
    def forward(self, idx):
        if getattr(self, "val", None) is None:
            self.val = torch.from_file("data/valid.txt", shared=False, size=125228, dtype=torch.uint8)
        pos = torch.arange(idx.shape[1])
        return self.tok(idx) + self.pos(pos), None
"""
)

# 5. training outside the fixed optimizer: an in-place update of a table inside forward
SIDE_TRAINING = (
    HEAD
    + """
    def forward(self, idx):
        if torch.is_grad_enabled():          # only in training forwards, not in the checks
            with torch.no_grad():
                self.pos.weight.mul_(1.01)
        pos = torch.arange(idx.shape[1])
        return self.tok(idx) + self.pos(pos), None
"""
)

# 6. causal on every prefix, but at evaluation each window borrows from the other windows of its
#    batch (a batch mean): only the re-mixed batch at the end exposes it
BATCH_MIXING = (
    HEAD
    + """
    def forward(self, idx):
        pos = torch.arange(idx.shape[1])
        x = self.tok(idx) + self.pos(pos)
        if not self.training:
            x = x + 0.5 * x.mean(dim=0, keepdim=True)
        return x, None
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_lookahead_embedding_fails(task):
    err = run_cheat(task, LABEL, LOOKAHEAD)
    assert "non-causal embedding" in err, err


@pytest.mark.slow
def test_state_between_calls_fails(task):
    err = run_cheat(task, LABEL, STATEFUL)
    assert "non-causal embedding" in err and "state kept between calls" in err, err


@pytest.mark.slow
def test_parameter_cap_fails(task):
    err = run_cheat(task, LABEL, TOO_BIG)
    assert "parameter cap exceeded" in err, err


def test_reading_validation_text_fails(task):
    err = run_cheat(task, LABEL, READS_VALID)
    # the environment's policy lists .from_file now; the harness's own check refuses it as well
    assert "from_file" in err and "not allowed" in err, err


@pytest.mark.slow
def test_training_outside_optimizer_fails(task):
    err = run_cheat(task, LABEL, SIDE_TRAINING)
    assert "changed outside the fixed optimizer" in err, err


@pytest.mark.slow
def test_mixing_windows_of_a_batch_fails(task):
    err = run_cheat(task, LABEL, BATCH_MIXING)
    assert "answered the same windows differently" in err or "non-causal model" in err, err


# ------------------------------------------- the boundary itself (the static policy switched off)
# Each cheat runs with lint=False: the lint would stop most of them first, and these tests check
# that the task kit's child (Landlock, its own uid, the guard) and the parent's own checks do.

PROBE = (
    HEAD.replace("import math\n", "import math\nimport os\n\nimport numpy as np\n").replace(
        "        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)\n",
        "        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)\n"
        "        here = os.path.dirname(os.path.abspath(__file__))\n"
        "        {build}\n",
    )
    + """
    def forward(self, idx):
        T = idx.shape[1]
        return self.tok(idx) + self.pos(torch.arange(T))[None], None
"""
)


def probe(build: str) -> str:
    return PROBE.replace("{build}", build)


def test_reading_validation_text_via_numpy_fails(task):
    # np.fromfile, which no lint flags: training on the text the model is scored on
    cheat = probe('np.fromfile(os.path.join(here, "data", "valid.txt"), np.uint8)')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "valid.txt" in err, err


@pytest.mark.slow
def test_reading_validation_text_via_open_fails(task):
    cheat = probe('open(os.path.join(here, "data", "valid.txt"), "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "valid.txt" in err, err


@pytest.mark.slow
def test_reading_parent_cmdline_fails(task):
    cheat = probe('open(f"/proc/{os.getppid()}/cmdline", "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err, err  # the guard


@pytest.mark.slow
def test_writing_a_fixed_file_fails(task):
    cheat = probe('open(os.path.join(here, "gpt.py"), "a").write("# patched")')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "for writing" in err, err


@pytest.mark.slow
def test_parameter_changed_outside_optimizer_without_lint_fails(task):
    err = run_cheat(task, LABEL, SIDE_TRAINING, lint=False)
    assert "changed outside the fixed optimizer" in err, err


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    assert_anchored(task, task.spec.reference_baseline, [LABEL], lint=False)


def _baseline_module(task, name: str):
    """The baseline's Embedding class and the task's gpt and settings modules, loaded from the
    task's files under names of their own (other tasks also have a `settings` module)."""
    import importlib.util
    import sys

    def load(mod_name: str, path):
        spec = importlib.util.spec_from_file_location(mod_name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
        return mod

    gpt = load("lm_embedding_gpt", task.root / "repo" / "gpt.py")
    settings = load("lm_embedding_settings", task.root / "repo" / "settings.py")
    region = load(f"lm_embedding_{name}", task.root / "baselines" / name / "embedding.py")
    return region.Embedding, gpt, settings


def test_value_embed_baseline_mixes_shared_tables_into_values(task):
    torch = pytest.importorskip("torch")
    embedding_cls, gpt, settings = _baseline_module(task, "value_embed")
    for spec in settings.SETTINGS.values():
        d, n, t = spec["d_model"], spec["n_layer"], spec["block_size"]
        cfg = gpt.Config(
            d_model=d,
            n_layer=n,
            n_head=spec["n_head"],
            block_size=t,
            max_params=settings.param_cap(d, n, t),
            body_params=settings.body_params(d, n),
        )
        emb = embedding_cls(cfg)
        total = sum(p.numel() for p in gpt.GPT(cfg, emb).parameters())
        assert total <= cfg.max_params
        idx = torch.randint(0, 256, (2, t))
        x0, ves = emb(idx)
        assert x0.shape == (2, t, d) and len(ves) == n
        assert all(v.shape == (2, t, d) for v in ves)
        # the speedrun's pattern: the first and the last layer read the same table
        gains = emb.gain.detach()
        torch.testing.assert_close(ves[0] / gains[0], ves[-1] / gains[-1])
        if n > 2:
            assert not torch.allclose(ves[0] / gains[0], ves[1] / gains[1])


@pytest.mark.slow
def test_value_embed_baseline_scores_as_anchored(task):
    assert_anchored(task, "value_embed", [LABEL], lint=False)
