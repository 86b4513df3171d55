"""Cheat tests for security-blackbox-linf-attack: every way around the fixed query budget, the
eps-ball or the black-box boundary fails the setting with a clear message (score 0).

Most run with the static policy off (``lint=False``): the task kit's least-privileged child,
the data-set hook of oracle.py and the parent's counter are what stop them. The model runs in
the parent, so no hook the attack leaves in its own process reaches a measurement."""

import pytest
from cheats import assert_anchored, run_cheat, run_setting

from mlsbench_env.spec import load_task

TASK = "security-blackbox-linf-attack"
LABEL = "mlp-digits"  # the cheapest visible setting (budget 50, 8x8 images)

MARGIN = """

def margin(logits, y):
    true = logits[np.arange(len(y)), y]
    other = logits.copy()
    other[np.arange(len(y)), y] = -np.inf
    return true - other.max(axis=1)
"""

# an honest start (one legal query per sample), then the cheat
OVER_BUDGET_CAUGHT = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    n = x.shape[0]
    x_adv = x.copy()
    for _ in range(budget + 20):
        cand = np.clip(x + rng.uniform(-eps, eps, size=x.shape), np.maximum(x - eps, 0), np.minimum(x + eps, 1))
        try:
            query(cand.astype(np.float32), np.arange(n))
        except RuntimeError:
            pass  # swallow the refusal and carry on: the attempt alone fails the run
    return x_adv
"""
)

# resets the child's own counter so the over-budget batch does reach the parent
OVER_BUDGET_RESET = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    n = x.shape[0]
    for _ in range(budget):
        query(x, np.arange(n))
    query._used[:] = 0
    query(x, np.arange(n))
    return x
"""
)

OUTSIDE_BALL = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    query(x, np.arange(x.shape[0]))
    return np.clip(x + 2.5 * eps * rng.choice([-1.0, 1.0], size=x.shape), 0.0, 1.0).astype(np.float32)
"""
)

QUERY_OUTSIDE_BALL = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    far = np.clip(x + 3 * eps * rng.choice([-1.0, 1.0], size=x.shape), 0.0, 1.0).astype(np.float32)
    try:
        query(far, np.arange(x.shape[0]))  # probing the model far outside the threat model
    except RuntimeError:
        pass
    return x
"""
)

PLAIN_OPEN = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    with open("weights/mlp_digits.npz", "rb") as f:
        f.read()
    return x
"""
)


# the raw frames, past the Oracle: the parent counts what it answers, not what the child says
FORGED_FRAMES = (
    MARGIN
    + """
import struct


def attack(query, x, y, eps, budget, rng):
    conn = query._conn
    m = budget + 1  # one sample, more queries than its budget, in one batch
    rows = np.repeat(x[:1].reshape(1, -1), m, axis=0).astype("<f4")
    conn.send_bytes(b"Q" + struct.pack("<i", m) + np.zeros(m, "<i4").tobytes() + rows.tobytes())
    conn.recv_bytes()
    return x
"""
)

HEAD_OS = (
    MARGIN
    + """
import os

HERE = os.path.dirname(os.path.abspath(__file__))  # the task folder (attack.py's)
"""
)


def reading(expr: str) -> str:
    """An attack that evaluates ``expr`` (a read), then returns x unchanged."""
    return (
        HEAD_OS
        + f"""

def attack(query, x, y, eps, budget, rng):
    {expr}
    return x
"""
    )


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(OVER_BUDGET_CAUGHT, id="caught"),
        pytest.param(OVER_BUDGET_RESET, id="counter-reset"),
        pytest.param(FORGED_FRAMES, id="forged-frames", marks=pytest.mark.slow),
    ],
)
def test_over_budget_is_refused_and_fails(task, text):
    """Queries are counted in the parent, per sample: a batch that would overrun a sample's
    budget is refused (nothing of it is answered) and the attempt fails the setting, whatever
    the child's own tally says."""
    err = run_cheat(task, LABEL, text, lint=False)
    assert "query budget exceeded" in err


@pytest.mark.slow
def test_x_adv_outside_ball_fails(task):
    err = run_cheat(task, LABEL, OUTSIDE_BALL, lint=False)
    assert "outside the eps-ball" in err


@pytest.mark.slow
def test_query_outside_ball_fails(task):
    err = run_cheat(task, LABEL, QUERY_OUTSIDE_BALL, lint=False)
    assert "invalid queries" in err


@pytest.mark.parametrize(
    "expr,what",
    [
        ('np.load(os.path.join(HERE, "weights", "mlp_digits.npz"))', "mlp_digits.npz"),
        ('open(os.path.join(HERE, "models.py")).read()', "models.py"),
        ('np.fromfile(os.path.join(HERE, "data.py"), dtype=np.uint8)', "data.py"),
    ],
    ids=["weights-np.load", "models-open", "data-np.fromfile"],
)
def test_reading_the_task_files_fails(task, expr, what):
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "black-box violation" in err and what in err


@pytest.mark.parametrize(
    "expr,what",
    [
        (
            'np.fromfile("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", np.uint8)',
            "t10k-labels",
        ),
        (
            'np.loadtxt(os.path.join(os.path.dirname(np.__file__), "..", "sklearn", "datasets",'
            ' "data", "digits.csv.gz"), delimiter=",")',
            "digits.csv.gz",
        ),
    ],
    ids=["fashion-np.fromfile", "digits-np.loadtxt"],
)
def test_reading_the_data_sets_fails(task, expr, what):
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "black-box violation" in err and what in err and "keeps this data from agent code" in err


@pytest.mark.slow
def test_reading_the_hidden_spec_fails(task):
    text = reading('open(os.path.join(HERE, "lenet-fmnist.json")).read()')
    result, run = run_setting(task, "lenet-fmnist", text, lint=False)
    assert run.metrics is None and "black-box violation" in run.error
    assert "lenet-fmnist.json" in run.error


def test_reading_the_parents_cmdline_fails(task):
    err = run_cheat(
        task, LABEL, reading('open(f"/proc/{os.getppid()}/cmdline").read()'), lint=False
    )
    assert "/proc/" in err
    assert any(m in err for m in ("Permission denied", "No such file", "violation"))


@pytest.mark.parametrize(
    "expr",
    ['open(os.path.join(HERE, "settings.py"), "a").write("#")', 'os.system("true")'],
    ids=["write-fixed-file", "process"],
)
def test_writing_or_starting_a_process_fails(task, expr):
    err = run_cheat(task, LABEL, reading(expr), lint=False)
    assert "black-box violation" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "ret,message",
    [("x * np.nan", "NaN or inf"), ("x[:-1]", "must return an array of shape")],
    ids=["nan", "shape"],
)
def test_malformed_x_adv_fails(task, ret, message):
    text = (
        MARGIN
        + f"""

def attack(query, x, y, eps, budget, rng):
    return {ret}
"""
    )
    assert message in run_cheat(task, LABEL, text, lint=False)


def test_plain_open_refused_by_policy(task):
    err = run_cheat(task, LABEL, PLAIN_OPEN)
    assert "policy" in err


@pytest.mark.slow
def test_the_reference_scores_as_anchored(task):
    """Honest control: square on the quickest setting, seed 0, gives its anchors (run with a
    hidden setting, as the calibration ran it: the final evaluation then adds hidden/'s files)."""
    hidden = next(s.label for s in task.spec.settings if s.hidden)
    assert_anchored(task, "square", [LABEL, hidden], rel=1e-6)
