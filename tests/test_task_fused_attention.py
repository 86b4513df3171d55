"""Cheat tests for kernel-fused-causal-attention, through the real final evaluation with the static
policy off (lint=False: the boundary and the measurements must stop them): inexact attention
(approximate, dropped blocks, exact only on inputs that look like checks), extra threads, outputs
aliasing the inputs, modified inputs, bad outputs, reading fixed files or the parent, writing a
fixed file fail the setting with a clear message and score 0; global torch hooks (the finding
of issue 19: a TorchFunctionMode that outlived the call once slowed the probe eightfold, roofline
fraction 2.6-5.1, score 97.8), patched harness code, work moved into loading the inputs and
persistent memory gain nothing (the probe and the naive reference run in a child that never
imports attention.py; the candidate's time and memory are read from outside its process)."""

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

SDPA = """
import torch
import torch.nn.functional as F


def attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
"""

# fixed files of the task folder (attention.py's folder; the child works in a scratch folder),
# read through torch and numpy (no static check flags numpy)
READ_FILE = (
    NAIVE
    + """

def attention(q, k, v):
    torch.from_file(__file__.replace("attention.py", "reference.py"), size=1)
    return naive(q, k, v)
"""
)
READ_NUMPY = (
    SDPA
    + """
import numpy as np

np.fromfile(__file__.replace("attention.py", "harness.py"), dtype=np.uint8)
"""
)
READ_PARENT = (
    SDPA
    + """
import os

open(f"/proc/{os.getppid()}/cmdline", "rb").read()
"""
)
WRITE_FIXED = (
    SDPA
    + """
import numpy as np

np.zeros(4).tofile(__file__.replace("attention.py", "run.py"))
"""
)

# the finding: a global torch function mode entered at import, which outlives every call; it
# repeats each matmul (the GEMM probe) and holds big buffers in the naive reference's ops
FUNCTION_MODE = (
    SDPA
    + """
from torch.overrides import TorchFunctionMode

KEEP = []


class Slow(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.mm, torch.matmul):
            for _ in range(7):
                func(*args, **kwargs)
        if func in (torch.softmax, torch.Tensor.masked_fill):
            KEEP[:] = [torch.ones(64, 1 << 20)]
        return func(*args, **kwargs)


Slow().__enter__()
"""
)
DISPATCH_MODE = (
    SDPA
    + """
from torch.utils._python_dispatch import TorchDispatchMode


class Slow(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.mm.default:
            for _ in range(7):
                func(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


Slow().__enter__()
"""
)
# a __torch_function__ subclass: every tensor the module touches becomes one
SUBCLASS = """
import torch
import torch.nn.functional as F


class Fast(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return super().__torch_function__(func, types, args, kwargs or {})


def attention(q, k, v):
    out = F.scaled_dot_product_attention(q.as_subclass(Fast), k, v, is_causal=True)
    return out.as_subclass(torch.Tensor)
"""
# patched fixed code: the reference and torch.mm made slow in the candidate's own process
PATCHED = (
    SDPA
    + """
import sys
import time

_mm = torch.mm


def slow_mm(*a, **kw):
    time.sleep(0.05)
    return _mm(*a, **kw)


def slow_naive(q, k, v):
    time.sleep(0.5)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


torch.mm = slow_mm
sys.modules["reference"].naive_attention = slow_naive
"""
)
# the work moved out of the timed call: the harness's own loading code patched to compute the
# (naive, memory-hungry) attention while the inputs arrive; attention() returns the result
IN_LOADING = (
    NAIVE
    + """
import sys

LOADED, DONE = [], []


class _Torch:
    def __getattr__(self, name):
        return getattr(torch, name)

    def from_numpy(self, a):
        t = torch.from_numpy(a)
        LOADED.append(t)
        if len(LOADED) == 3:
            DONE[:] = [naive(*LOADED)]
            LOADED.clear()
        return t


sys.modules["worker"].torch = _Torch()


def attention(q, k, v):
    return DONE.pop()
"""
)
THREAD = (
    SDPA
    + """
import threading


def spin():
    while True:
        sum(range(1000))


threading.Thread(target=spin, daemon=True).start()
"""
)
NAN_OUT = SDPA.replace("return F.scaled", "return float('nan') * F.scaled")
WRONG_SHAPE = SDPA.replace("is_causal=True)", "is_causal=True)[..., :-1].contiguous()")
HUGE_OUT = SDPA.replace("return F.scaled", "return torch.zeros(64, 1 << 20) + F.scaled").replace(
    "is_causal=True)", "is_causal=True).sum()"
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_low_precision_caught(task):
    err = run_cheat(task, LABEL, LOW_PRECISION, lint=False)
    assert "inexact attention" in err and "max |out - ref|" in err, err


@pytest.mark.slow
def test_dropped_blocks_caught(task):
    err = run_cheat(task, LABEL, DROP_BLOCKS, lint=False)
    assert "inexact attention" in err, err


@pytest.mark.slow
def test_exact_only_on_check_inputs_caught(task):
    err = run_cheat(task, LABEL, EXACT_ON_CHECKS_ONLY, lint=False)
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
    err = run_cheat(task, LABEL, text, lint=False)
    assert what in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,what",
    [
        (READ_FILE, "Permission denied"),  # torch opens it in C: the kernel refuses
        (READ_NUMPY, "policy violation: agent code opened"),
        (READ_PARENT, "/cmdline"),
        (WRITE_FIXED, "for writing"),
    ],
    ids=["torch-reference", "numpy-harness", "parent-cmdline", "write-run-py"],
)
def test_files_and_parent_refused(task, text, what):
    err = run_cheat(task, LABEL, text, lint=False)
    assert what in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "text,what",
    [
        (THREAD, "started threads"),
        (NAN_OUT, "NaN or inf"),
        (WRONG_SHAPE, "expected torch.float32 (1, 8, 512, 64)"),
        (HUGE_OUT, "expected torch.float32 (1, 8, 512, 64)"),
    ],
    ids=["thread", "nan", "wrong-shape", "huge"],
)
def test_bad_behaviour_fails(task, text, what):
    err = run_cheat(task, LABEL, text, lint=False)
    assert what in err, err


def _anchor(name, metric):
    anchors = json.loads((load_task(TASK).root / "anchors.json").read_text())
    return anchors["results"][name][LABEL][metric][0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [FUNCTION_MODE, SUBCLASS, PATCHED, IN_LOADING],
    ids=["function-mode", "subclass", "patched-reference", "in-loading"],
)
def test_hooks_and_moved_work_gain_nothing(task, text):
    """Each is SDPA (the reference, worth 50) or naive attention plus a hook: it must score no
    better than honest SDPA (the probe, the naive reference and the loading are out of reach or
    charged), and never above the roofline."""
    _, run = run_setting(task, LABEL, text, lint=False)
    assert run.metrics is not None, run.error
    assert run.metrics["roofline_fraction"] < 2 * _anchor("sdpa", "roofline_fraction") < 1.0
    assert run.metrics["mem_reduction"] < 2 * _anchor("sdpa", "mem_reduction"), run.metrics
    if text is IN_LOADING:  # naive attention's memory, moved into the loading, still counts
        assert run.metrics["mem_reduction"] < 2.0, run.metrics


@pytest.mark.slow
def test_dispatch_mode_refused(task):
    """Importing torch's dispatch-mode module sets an environment variable (torch's compile
    cache), which the guard refuses in the candidate's process; were it allowed, the mode would
    reach nothing but the candidate's own calls, like the function mode above."""
    err = run_cheat(task, LABEL, DISPATCH_MODE, lint=False)
    assert "policy violation" in err and "os.putenv" in err, err


@pytest.mark.slow
def test_honest_sdpa_scores_as_anchored(task):
    _, run = run_setting(task, LABEL, SDPA, lint=False)
    assert run.metrics is not None, run.error
    for metric in ("roofline_fraction", "mem_reduction"):
        ratio = run.metrics[metric] / _anchor("sdpa", metric)
        assert 0.6 < ratio < 1.6, (metric, run.metrics)


@pytest.mark.slow
def test_persistent_buffer_is_charged(task):
    _, run = run_setting(task, LABEL, PERSISTENT_BUFFER, lint=False)
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
