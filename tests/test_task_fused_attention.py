"""Cheat tests for kernel-fused-causal-attention: inexact attention (approximate, dropped blocks,
exact only on inputs that look like checks), extra threads, outputs aliasing the inputs, modified
inputs and hidden persistent memory are caught: the setting fails with a clear message and
scores 0 (or, for memory, is charged)."""

import json

import pytest
from cheats import run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = "kernel-fused-causal-attention"
LABEL = "t512-h8-d64"  # the cheapest visible setting

NAIVE = """
import math

import torch


def naive(q, k, v):
    t = q.shape[-2]
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)
"""

# approximate: the matmuls in bfloat16 (fast on some hardware, ~1e-2 relative error)
LOW_PRECISION = (
    NAIVE
    + """

def attention(q, k, v):
    return naive(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
"""
)

# drops blocks: sliding-window attention (only the last 128 keys), a common approximation
DROP_BLOCKS = (
    NAIVE
    + """

def attention(q, k, v):
    t = q.shape[-2]
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    i = torch.arange(t)
    far = (i.unsqueeze(0) > i.unsqueeze(1)) | (i.unsqueeze(1) - i.unsqueeze(0) >= 128)
    return torch.matmul(torch.softmax(s.masked_fill(far, float("-inf")), dim=-1), v)
"""
)

# exact on the calls it guesses are checks (the first calls, other lengths, large logits), and
# approximate (dropped far blocks) on the later full-length N(0, 1) calls, the ones it is timed on
EXACT_ON_CHECKS_ONLY = (
    NAIVE
    + """

CALLS = [0]


def attention(q, k, v):
    CALLS[0] += 1
    t = q.shape[-2]
    if CALLS[0] <= 8 or t != 512 or float(q.abs().max()) > 6.0 or float(k.abs().max()) > 6.0:
        return naive(q, k, v)
    out = torch.empty_like(q)
    for i0 in range(0, t, 128):  # each query block sees only its own and the previous key block
        j0 = max(0, i0 - 128)
        out[:, :, i0:i0 + 128] = naive_block(q[:, :, i0:i0 + 128], k[:, :, j0:i0 + 128], v[:, :, j0:i0 + 128], i0 - j0)
    return out


def naive_block(q, k, v, off):
    s = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    r = torch.arange(q.shape[-2]).unsqueeze(1) + off
    c = torch.arange(k.shape[-2]).unsqueeze(0)
    return torch.matmul(torch.softmax(s.masked_fill(c > r, float("-inf")), dim=-1), v)
"""
)

MORE_THREADS = (
    NAIVE
    + """

def attention(q, k, v):
    torch.set_num_threads(2)
    return naive(q, k, v)
"""
)

ALIAS_OUTPUT = (
    NAIVE
    + """

def attention(q, k, v):
    return q.copy_(naive(q, k, v))
"""
)

MODIFY_INPUTS = (
    NAIVE
    + """

def attention(q, k, v):
    q.mul_(1.0)
    k.add_(0.0)
    v.zero_()
    return torch.zeros_like(q)
"""
)

# keeps the (T, T) score buffer between calls: no transient allocation, but it is still charged
PERSISTENT_BUFFER = """
import math

import torch

CACHE = []


def attention(q, k, v):
    b, h, t, d = q.shape
    if not CACHE or CACHE[0].shape != (b, h, t, t):
        CACHE.clear()
        CACHE.append(torch.empty(b, h, t, t))
    s = torch.matmul(q, k.transpose(-2, -1), out=CACHE[0])
    s.mul_(1.0 / math.sqrt(d))
    s.masked_fill_(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    s.sub_(s.amax(-1, keepdim=True)).exp_()
    s.div_(s.sum(-1, keepdim=True))
    return torch.matmul(s, v)
"""

READ_FILE = (
    NAIVE
    + """

def attention(q, k, v):
    torch.from_file("/etc/hostname", size=1)
    return naive(q, k, v)
"""
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_low_precision_caught(task):
    err = run_cheat(task, LABEL, LOW_PRECISION)
    assert "inexact attention" in err and "max |out - ref|" in err, err


@pytest.mark.slow
def test_dropped_blocks_caught(task):
    err = run_cheat(task, LABEL, DROP_BLOCKS)
    assert "inexact attention" in err, err


@pytest.mark.slow
def test_exact_only_on_check_inputs_caught(task):
    err = run_cheat(task, LABEL, EXACT_ON_CHECKS_ONLY)
    assert "inexact attention (timed call" in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,what",
    [
        (MORE_THREADS, "number of threads"),
        (ALIAS_OUTPUT, "shares memory with its inputs"),
        (MODIFY_INPUTS, "modified its inputs"),
    ],
    ids=["threads", "alias", "modify-inputs"],
)
def test_contract_violations_fail(task, text, what):
    err = run_cheat(task, LABEL, text)
    assert what in err, err


@pytest.mark.slow
def test_file_read_refused(task):
    err = run_cheat(task, LABEL, READ_FILE)
    assert "allows no file I/O" in err or "policy violation" in err, err


@pytest.mark.slow
def test_persistent_buffer_is_charged(task):
    _, run = run_setting(task, LABEL, PERSISTENT_BUFFER)
    assert run.metrics is not None, run.error
    # the (8, 512, 512) score buffer kept between calls is 8x the output, and it is counted
    assert run.metrics["mem_reduction"] < 17.0 / 8.0, run.metrics


def _grade(tmp_path, **rec):
    import importlib.util

    from mlsbench_env.spec import load_task as _load

    task = _load(TASK)
    spec = importlib.util.spec_from_file_location("fca_grader", task.root / "grader.py")
    grader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grader)
    base = dict(
        setting=LABEL,
        seed=0,
        shape=[1, 8, 512, 64],
        tol=1e-4,
        status="ok",
        error=None,
        violation=None,
        max_rel_error=3e-6,
        roofline_fraction=0.3,
        mem_reduction=15.0,
    )
    base.update(rec)
    (tmp_path / "run.json").write_text(json.dumps(base))
    return grader.grade(LABEL, 0, tmp_path, task.root)


def test_grader_checks(tmp_path):
    assert _grade(tmp_path) == {"roofline_fraction": 0.3, "mem_reduction": 15.0}
    for bad, msg in [
        (dict(status="failed", error="inexact attention (timed call 3)"), "inexact attention"),
        (dict(violation="opened '/etc/passwd'"), "policy violation"),
        (dict(seed=1), "expected"),
        (dict(shape=[1, 8, 256, 64]), "shape"),
        (dict(max_rel_error=2e-4), "inexact attention"),
        (dict(roofline_fraction=float("nan")), "invalid"),
        # what a global torch mode that outlived the candidate made of the probe (issue found
        # by an adversarial run: fractions of 2.6-5.1, scored 97.8)
        (dict(roofline_fraction=2.6), "physically impossible"),
        (dict(mem_reduction=1e6), "physically impossible"),
    ]:
        with pytest.raises(ValueError, match=msg):
            _grade(tmp_path, **bad)
