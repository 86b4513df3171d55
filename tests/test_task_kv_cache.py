"""Trust tests for tasks/lm-attention-cache-reduction, with the static policy off (the boundary and
the parent's measurements must stop them): every way to cheat the measured KV cache (state kept
outside the returned cache, a non-causal module, a cache that drops what the full forward uses,
a bigger model, a cache smuggled past the byte count: the finding of issue 19, where a torch
hook installed at import made plain multi-head attention count 0 cache bytes) fails the setting
with a clear message, and so do reading the texts or the parent, writing a fixed file and bad
outputs.

The fast tests run the real harness on the task's unscored `smoke` configuration (a tiny GPT,
30 training steps: a few seconds); one slow test repeats the main cheat on a scored visible
setting and checks its score is 0.
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
from cheats import run_setting

from mlsbench_env.evaluation import final_evaluation
from mlsbench_env.spec import Setting, load_task

TASK = "lm-attention-cache-reduction"
LABEL = "gpt-d64-l2-ctx64"  # the cheapest scored visible setting
SMOKE = Setting(label="smoke", command="python run.py --setting smoke")

HEAD = """import torch
import torch.nn as nn
import torch.nn.functional as F


def attend(q, k, v):
    t, s = q.shape[2], k.shape[2]
    mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Base(nn.Module):
    def __init__(self, d_model, n_head, block_size):
        super().__init__()
        self.hd = d_model // n_head
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)

    def heads(self, z):
        b, t, _ = z.shape
        return z.view(b, t, -1, self.hd).transpose(1, 2)

    def out(self, y):
        b, h, t, hd = y.shape
        return self.proj(y.transpose(1, 2).reshape(b, t, h * hd))
"""

# 1. the full K/V kept on the module (self.store); only a 1-element dummy tensor returned
ON_MODULE = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is None:
            self.store = (k, v)
        else:
            self.store = (torch.cat([self.store[0], k], 2), torch.cat([self.store[1], v], 2))
        return self.out(attend(q, *self.store)), (torch.zeros(1),)
"""
)

# 2. the full K/V kept in a module-level global list
IN_GLOBAL = (
    HEAD
    + """
STORE = []


class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is None:
            STORE.append([k, v])
            slot = len(STORE) - 1
        else:
            slot = int(cache[0].item())
            STORE[slot] = [torch.cat([STORE[slot][0], k], 2), torch.cat([STORE[slot][1], v], 2)]
        return self.out(attend(q, *STORE[slot])), (torch.tensor([float(slot)]),)
"""
)

# 3. hidden where the state check does not look (a mutable default argument of a function):
#    only the hand-over of the cache between processes exposes it
IN_DEFAULT_ARG = (
    HEAD
    + """

def remember(key, k, v, fresh, store={}):
    if fresh or key not in store:
        store[key] = (k, v)
    else:
        store[key] = (torch.cat([store[key][0], k], 2), torch.cat([store[key][1], v], 2))
    return store[key]


class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        kk, vv = remember(id(self.q), k, v, cache is None)
        return self.out(attend(q, kk, vv)), (k[:, :, -1:], v[:, :, -1:])
"""
)

# 4. non-causal: the full-sequence forward attends to every position
NON_CAUSAL = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            y = attend(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y), (k, v)
"""
)

# 5. a cache that keeps only the last 2 positions while the full forward sees the whole context
DROPS_INFO = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self.out(attend(q, k, v)), (k[:, :, -2:], v[:, :, -2:])
"""
)

# 6. more parameters than the cap (1.1x the default model)
TOO_BIG = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def __init__(self, d_model, n_head, block_size):
        super().__init__(d_model, n_head, block_size)
        self.extra = nn.Linear(d_model, 8 * d_model)

    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self.out(attend(q, k, v)), (k, v)
"""
)

# 7. a cache that is not plain tensors (a dict carrying python objects)
BAD_CACHE = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
        return self.out(attend(q, k, v)), {"k": k, "v": v}
"""
)

# a correct multi-head module written differently from the scaffold (must pass on smoke)
HONEST = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self.out(attend(q, k, v)), (k, v)
"""
)


# allowed: a float16 cache, counted at 2 bytes per value (the full forward uses the same rounding)
HONEST_FP16 = (
    HEAD
    + """

class CausalSelfAttention(Base):
    def forward(self, x, cache=None):
        q = self.heads(self.q(x))
        k, v = self.heads(self.k(x)).half(), self.heads(self.v(x)).half()
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self.out(attend(q, k.float(), v.float())), (k, v)
"""
)


# the finding of issue 19, rebuilt: plain multi-head attention whose cache travels in the
# description of its structure (the decoders' packing code patched at import), 0 bytes counted
SMUGGLED = (
    HONEST
    + """
import base64
import sys

_w = sys.modules["worker"]
_pack, _unpack = _w.pack, _w.unpack


def pack(caches, limit=16):
    header, raw = _pack(caches, limit)
    return [{"kind": "tuple", "tensors": [], "data": base64.b64encode(raw).decode(),
             "header": header}], b""


def unpack(header, raw):
    if header and isinstance(header[0], dict) and "data" in header[0]:
        return _unpack(header[0]["header"], base64.b64decode(header[0]["data"]))
    return _unpack(header, raw)


_w.pack, _w.unpack = pack, unpack
"""
)

# the same through a global torch function mode: the byte view of every tensor the decoders'
# packing code turns into bytes is empty
EMPTY_BYTES = (
    HONEST
    + """
import sys

from torch.overrides import TorchFunctionMode


def packing():
    return any(sys._getframe(i).f_code.co_name == "pack" for i in range(2, 5))


class Hide(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.view and args[1:2] == (torch.uint8,) and packing():
            return out[:0]
        return out


Hide().__enter__()
"""
)

# the task folder is attention.py's folder (the child's working folder is a scratch folder)
READ_TEXT = (
    HONEST
    + """
import numpy as np

np.fromfile(__file__.replace("attention.py", "data/val.txt"), dtype=np.uint8)
"""
)
READ_PARENT = (
    HONEST
    + """
import os

open(f"/proc/{os.getppid()}/cmdline", "rb").read()
"""
)
WRITE_FIXED = (
    HONEST
    + """
open(__file__.replace("attention.py", "gpt.py"), "a").write("# changed")
"""
)
NAN_OUT = HONEST.replace(
    "return self.out(attend(q, k, v))", "return float('nan') * self.out(attend(q, k, v))"
)
WRONG_SHAPE = HONEST.replace(
    "return self.out(attend(q, k, v))", "return self.out(attend(q, k, v))[:, :, :-1]"
)
HUGE_CACHE = HONEST.replace("(k, v)\n", "(k, v, torch.zeros(1 << 24))\n")

# the default suite keeps two sandbox runs (CI time); the other cheats run with -m slow
SLOW = pytest.mark.slow


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def _run(task, text, setting=SMOKE):
    """The edit through the real final evaluation, with the static policy off."""
    with mock.patch("mlsbench_env.evaluation.run.check_policy", return_value=[]):
        return final_evaluation(
            task, {("attention.py", 1): text}, {}, seeds=[0], settings=[setting]
        )


def _error(result) -> str:
    assert len(result.runs) == 1
    run = result.runs[0]
    assert run.error, f"the cheat was not caught: metrics {run.metrics}\n{run.log_tail}"
    return run.error


@pytest.mark.slow
@pytest.mark.parametrize("text", [HONEST, HONEST_FP16], ids=["fp32", "fp16-cache"])
def test_honest_module_passes_smoke(task, text):
    result = _run(task, text)
    run = result.runs[0]
    assert run.error is None, f"{run.error}\n{run.log_tail}"
    assert run.metrics["cost"] > 0


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(ON_MODULE, "keeps state outside the cache it returns", id="on-module"),
        pytest.param(
            IN_GLOBAL, "keeps state outside the cache it returns", id="in-global", marks=SLOW
        ),
        pytest.param(
            IN_DEFAULT_ARG,
            "disagrees with the full-sequence forward",
            id="in-default-arg",
            marks=SLOW,
        ),
        pytest.param(NON_CAUSAL, "non-causal attention", id="non-causal", marks=SLOW),
        pytest.param(
            DROPS_INFO, "disagrees with the full-sequence forward", id="drops-info", marks=SLOW
        ),
        pytest.param(TOO_BIG, "parameter cap exceeded", id="too-big"),
        pytest.param(
            BAD_CACHE,
            "the cache must be None or a tuple/list of tensors",
            id="bad-cache",
            marks=SLOW,
        ),
        pytest.param(SMUGGLED, "protocol error: the cache after a decoding step", id="smuggled"),
        pytest.param(
            EMPTY_BYTES, "bytes, but 0 bytes came with it", id="function-mode", marks=SLOW
        ),
        pytest.param(READ_TEXT, "policy violation: agent code opened", id="read-text", marks=SLOW),
        pytest.param(READ_PARENT, "/cmdline", id="parent-cmdline", marks=SLOW),
        pytest.param(WRITE_FIXED, "for writing", id="write-gpt-py", marks=SLOW),
        pytest.param(NAN_OUT, "NaN or inf logits", id="nan", marks=SLOW),
        pytest.param(WRONG_SHAPE, "must return (y, cache) with y of shape", id="shape", marks=SLOW),
        pytest.param(HUGE_CACHE, "bytes", id="huge-cache", marks=SLOW),
    ],
)
def test_cheat_fails_with_message(task, text, expected):
    err = _error(_run(task, text))
    assert expected in err, err


@pytest.mark.slow
def test_global_cache_scores_zero_on_scored_setting(task):
    setting = next(s for s in task.spec.settings if s.label == LABEL)
    result = _run(task, IN_GLOBAL, setting)
    assert "keeps state outside the cache it returns" in _error(result)
    assert result.setting_scores[LABEL] == 0


@pytest.mark.slow
def test_reference_scores_as_anchored_on_hidden_setting(task):
    """Honest control: the MLA reference on the hidden setting (the final validation text is
    present only with a hidden setting) reproduces its calibrated cost exactly."""
    label = "gpt-d64-h8-l2-ctx64"
    (text,) = task.baseline_regions("mla").values()
    _, run = run_setting(task, label, text, lint=False)
    assert run.metrics is not None, run.error
    anchors = json.loads((task.root / "anchors.json").read_text())
    assert run.metrics["cost"] == pytest.approx(
        anchors["results"]["mla"][label]["cost"][0], abs=1e-9
    )
