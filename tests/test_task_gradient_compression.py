"""Trust tests for tasks/optimization-gradient-compression: every way to cheat the bit budget
or read what the compressor must not fails the setting (score 0) with a clear message.

The cheats run with the static policy off (``lint=False``): the task kit's least-privileged
children, the data-set hook of workers.py and the parent's bit counter are what stop them.
(Before the port a renamed builtin read the digits file the labels come from in the real
sandbox; the old tests were satisfied by the static check alone.) Gradients, the optimiser
step and the test predictions are computed in the parent, where agent code never runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat, run_setting

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

# 4b. ... or straight from the files: the digits file the labels come from (site-packages),
# Fashion-MNIST's test labels, a fixed file of the task, with numpy's readers and a renamed open
DIGITS = (
    'os.path.join(os.path.dirname(np.__file__), "..", "sklearn", "datasets", "data", '
    '"digits.csv.gz")'
)
FASHION_LABELS = '"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"'


def reading(expr: str) -> str:
    """A compressor whose module evaluates ``expr`` (a read) when a worker imports it."""
    return READ_LABELS_IMPORT.replace(
        'import data\n\nLABELS = data.test_labels("digits")',
        f"import os\n\nHERE = os.path.dirname(os.path.abspath(__file__))\nLABELS = {expr}",
    )


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_more_bits_than_the_budget_fails(task):
    err = run_cheat(task, LABEL, TOO_MANY_BITS, lint=False)
    assert "bit budget exceeded" in err and "worker 0" in err


@pytest.mark.slow
def test_global_side_channel_does_not_reach_the_aggregator(task):
    err = run_cheat(task, LABEL, SIDE_CHANNEL, lint=False)
    assert "aggregator" in err and "KeyError" in err


@pytest.mark.slow
def test_workers_cannot_read_each_others_state(task):
    err = run_cheat(task, LABEL, WORKER_CROSSTALK, lint=False)
    assert "worker 3" in err and "KeyError" in err


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
    result, run = run_setting(task, LABEL, text, lint=False)
    assert run.error is None and run.metrics["accuracy"] < 30.0  # chance is 10 %
    assert result.setting_scores[LABEL] == 0


def test_bool_arrays_cannot_smuggle_bytes(task):
    err = run_cheat(task, LABEL, BOOL_SMUGGLE, lint=False)
    assert "bool but holds bytes other than 0/1" in err


@pytest.mark.parametrize(
    "expr,what",
    [
        (f'np.loadtxt({DIGITS}, delimiter=",")', "digits.csv.gz"),
        (f"np.fromfile({FASHION_LABELS}, dtype=np.uint8)", "t10k-labels"),
        (f"np.load({FASHION_LABELS}, allow_pickle=True)", "t10k-labels"),
        (f"[open][0]({DIGITS}, 'rb').read()", "digits.csv.gz"),
    ],
    ids=["digits-np.loadtxt", "fashion-np.fromfile", "fashion-np.load", "renamed-open"],
)
def test_reading_the_data_sets_is_refused(task, expr, what):
    """The finding: the digits file the labels come from was read by a renamed builtin in the
    real sandbox. Now the worker's process ends on the open, whatever reads it."""
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "policy violation" in err and what in err and "keeps this data from agent code" in err


@pytest.mark.parametrize(
    "expr,what",
    [
        ('np.fromfile(os.path.join(HERE, "data.py"), dtype=np.uint8)', "data.py"),
        (
            'np.loadtxt(os.path.join(HERE, "harness.py"), dtype=str, delimiter="\\x00")',
            "harness.py",
        ),
    ],
    ids=["data.py-np.fromfile", "harness.py-np.loadtxt"],
)
def test_reading_a_fixed_file_is_refused(task, expr, what):
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "policy violation" in err and what in err


def test_importing_the_data_module_is_refused(task):
    err = run_cheat(task, LABEL, READ_LABELS_IMPORT, lint=False)
    assert "policy violation" in err or "No module named 'data'" in err


@pytest.mark.slow
def test_reading_the_hidden_spec_is_refused(task):
    text = reading('open(os.path.join(HERE, "extra_setting.json")).read()')
    result, run = run_setting(task, "fashion14-cnn-k6-r24", text, lint=False)
    assert run.metrics is None and "policy violation" in run.error


def test_reading_the_parents_cmdline_is_refused(task):
    err = run_cheat(
        task, LABEL, reading('open(f"/proc/{os.getppid()}/cmdline").read()'), lint=False
    )
    assert "/proc/" in err
    assert any(m in err for m in ("Permission denied", "No such file", "policy violation"))


@pytest.mark.parametrize(
    "expr",
    ['open(os.path.join(HERE, "comm.py"), "a").write("#")', 'os.system("true")'],
    ids=["write-fixed-file", "process"],
)
def test_writing_or_starting_a_process_is_refused(task, expr):
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "policy violation" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "grad,message",
    [("np.full(s, np.nan, np.float32)", "NaN or inf"), ("np.zeros(3, np.float32)", "shape")],
    ids=["nan", "shape"],
)
def test_malformed_aggregates_fail(task, grad, message):
    text = TOO_MANY_BITS.replace(
        'return "grad", unflat(sum(p["g"] for p in payloads) / self.K, self.shapes)',
        f'return "grad", {{n: {grad} for n, s in self.shapes.items()}}',
    ).replace('return {"g": flat(grads)}', "return {}")
    assert message in run_cheat(task, LABEL, text, lint=False)


@pytest.mark.slow
def test_the_reference_scores_as_anchored(task):
    """Honest control: the reference on the quickest setting, seed 0, gives its anchor."""
    assert_anchored(task, task.spec.reference_baseline, [LABEL], rel=1e-6)


def test_test_labels_never_enter_the_training_processes():
    """The harness only loads training data and test *images*; labels are the grader's."""
    src = "".join((REPO / f).read_text() for f in ("harness.py", "comm.py", "workers.py"))
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
