"""Trust tests for tasks/optimization-gradient-compression: every way to cheat the bit budget
or read what the compressor must not fails the setting (score 0) with a clear message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from cheats import run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = "optimization-gradient-compression"
LABEL = "digits-mlp-k4-r32"  # the cheapest visible setting
REPO = Path(__file__).resolve().parents[1] / "tasks" / TASK / "repo"

HEAD = """import math

import numpy as np


def flat(grads):
    return np.concatenate([np.asarray(grads[n], np.float32).reshape(-1) for n in sorted(grads)])


def unflat(v, shapes):
    out, i = {}, 0
    for n in sorted(shapes):
        k = int(np.prod(shapes[n]))
        out[n] = v[i:i + k].reshape(shapes[n])
        i += k
    return out
"""

# 1. sends the whole float32 gradient: 32 x n_params bits, 32x the budget
TOO_MANY_BITS = (
    HEAD
    + """

class Compressor:
    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        pass

    def compress(self, grads, step, round, reply):
        return {"g": flat(grads)}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.shapes, self.K = shapes, num_workers

    def aggregate(self, payloads, step, round):
        return "grad", unflat(sum(p["g"] for p in payloads) / self.K, self.shapes)
"""
)

# 2. side channel: stash the full gradient in a module global / class attribute, send 8 bits
SIDE_CHANNEL = (
    HEAD
    + """
STASH = {}


class Compressor:
    shared = {}

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.worker = worker

    def compress(self, grads, step, round, reply):
        STASH[self.worker] = flat(grads)
        Compressor.shared[self.worker] = flat(grads)
        return {"w": np.array([self.worker], dtype=np.int8)}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.shapes, self.K = shapes, num_workers

    def aggregate(self, payloads, step, round):
        g = sum(STASH[int(p["w"][0])] + Compressor.shared[int(p["w"][0])] for p in payloads) / 2
        return "grad", unflat(g / self.K, self.shapes)
"""
)

# 2b. the same stash, read by a fellow worker (to coordinate the workers' choices)
WORKER_CROSSTALK = (
    HEAD
    + """
STASH = {}


class Compressor:
    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.worker, self.K = worker, num_workers

    def compress(self, grads, step, round, reply):
        STASH[(step, self.worker)] = flat(grads)
        if self.worker == self.K - 1:   # the last worker sums everybody's gradient
            total = sum(STASH[(step, w)] for w in range(self.K))
        return {"w": np.array([self.worker], dtype=np.int8)}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.shapes = shapes

    def aggregate(self, payloads, step, round):
        return "grad", unflat(np.zeros(sum(int(np.prod(s)) for s in self.shapes.values()),
                                       np.float32), self.shapes)
"""
)

# 3. bool arrays counted at 1 bit: smuggle 8 bits per element in bytes other than 0/1
BOOL_SMUGGLE = (
    HEAD
    + """

class Compressor:
    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        pass

    def compress(self, grads, step, round, reply):
        raw = np.frombuffer(flat(grads).astype(np.float32).tobytes(), dtype=np.bool_)
        return {"b": raw}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.shapes, self.K = shapes, num_workers

    def aggregate(self, payloads, step, round):
        g = sum(np.frombuffer(p["b"].tobytes(), dtype=np.float32) for p in payloads)
        return "grad", unflat(g / self.K, self.shapes)
"""
)

# 4. reading the test labels: through the task's data module ...
READ_LABELS_IMPORT = (
    HEAD
    + """
import data

LABELS = data.test_labels("digits")


class Compressor:
    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        pass

    def compress(self, grads, step, round, reply):
        return {}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.shapes = shapes

    def aggregate(self, payloads, step, round):
        return "grad", {n: np.zeros(s, np.float32) for n, s in self.shapes.items()}
"""
)

# 4b. ... or straight from the files
READ_LABELS_FILE = READ_LABELS_IMPORT.replace(
    'import data\n\nLABELS = data.test_labels("digits")',
    'LABELS = np.loadtxt("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")\n'
    'RAW = open("data.py").read()',
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_more_bits_than_the_budget_fails(task):
    err = run_cheat(task, LABEL, TOO_MANY_BITS)
    assert "bit budget exceeded" in err and "worker 0" in err


@pytest.mark.slow
def test_global_side_channel_does_not_reach_the_aggregator(task):
    err = run_cheat(task, LABEL, SIDE_CHANNEL)
    assert "aggregate raised" in err and "KeyError" in err


@pytest.mark.slow
def test_workers_cannot_read_each_others_state(task):
    err = run_cheat(task, LABEL, WORKER_CROSSTALK)
    assert "compress raised" in err and "KeyError" in err


@pytest.mark.slow
def test_a_tolerant_side_channel_gets_no_gradient(task):
    """A stash that falls back to zeros when it is empty runs to the end, but no gradient
    arrives: the model stays at its initialisation and the setting scores 0."""
    text = SIDE_CHANNEL.replace(
        'g = sum(STASH[int(p["w"][0])] + Compressor.shared[int(p["w"][0])] for p in payloads) / 2',
        'g = sum(STASH.get(int(p["w"][0]), 0) + Compressor.shared.get(int(p["w"][0]), 0)'
        " for p in payloads) / 2\n        g = g + np.zeros(sum(int(np.prod(s)) for s in self.shapes.values()))",
    )
    assert text != SIDE_CHANNEL
    result, run = run_setting(task, LABEL, text)
    assert run.error is None and run.metrics["accuracy"] < 30.0  # chance is 10 %
    assert result.setting_scores[LABEL] == 0


def test_bool_arrays_cannot_smuggle_bytes(task):
    err = run_cheat(task, LABEL, BOOL_SMUGGLE)
    assert "bool but holds bytes other than 0/1" in err


@pytest.mark.parametrize("text", [READ_LABELS_IMPORT, READ_LABELS_FILE], ids=["import", "file"])
def test_reading_test_labels_is_refused(task, text):
    err = run_cheat(task, LABEL, text)
    assert "policy" in err


def test_test_labels_never_enter_the_training_processes():
    """The harness only loads training data and test *images*; labels are the grader's."""
    src = (REPO / "harness.py").read_text() + (REPO / "comm.py").read_text()
    assert "test_labels" not in src and "load_test_images" in src


def _comm():
    spec = importlib.util.spec_from_file_location("_gc_comm", REPO / "comm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bit_rule_and_canonical_forwarding():
    comm = _comm()
    payload = {
        "v": np.ones(10, np.float32),
        "i": np.arange(10, dtype=np.int16),
        "s": np.zeros((2, 3), bool),
    }
    canon, bits, _ = comm.parse(comm.encode(payload))
    # numel * width + 8 * len(key) + 8 + 32 * ndim per array
    assert bits == (10 * 32 + 8 + 8 + 32) + (10 * 16 + 8 + 8 + 32) + (6 * 1 + 8 + 8 + 64)
    # a header padded with extra whitespace / keys is refused or re-encoded canonically
    blob = comm.encode(payload)
    (hlen,) = np.frombuffer(blob[:4], "<u4")
    padded = blob[4 : 4 + hlen].replace(b",", b" ,")
    again, bits2, _ = comm.parse(len(padded).to_bytes(4, "little") + padded + blob[4 + hlen :])
    assert again == canon and bits2 == bits
    with pytest.raises(comm.PayloadError):
        comm.parse(canon + b"\x00")  # trailing bytes
    assert comm.decode(canon)["i"].tolist() == list(range(10))
