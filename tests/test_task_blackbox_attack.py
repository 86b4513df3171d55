"""Cheat tests for security-blackbox-linf-attack: every way around the fixed query budget, the
eps-ball or the black-box boundary fails the setting with a clear message (score 0)."""

import pytest
from cheats import run_cheat

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

# np.lib.npyio.NpzFile opens a path through zipfile: it passes the static import/IO policy, so
# it is the harness's runtime guard that must stop it
READ_WEIGHTS = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    z = np.lib.npyio.NpzFile("weights/mlp_digits.npz")
    w = [z[k] for k in z.files]
    return x
"""
)

READ_LABELS = (
    MARGIN
    + """

def attack(query, x, y, eps, budget, rng):
    z = np.lib.npyio.NpzFile("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
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


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(OVER_BUDGET_CAUGHT, id="caught"),
        pytest.param(OVER_BUDGET_RESET, id="counter-reset", marks=pytest.mark.slow),
    ],
)
def test_over_budget_fails(task, text):
    err = run_cheat(task, LABEL, text)
    assert "query budget exceeded" in err


@pytest.mark.slow
def test_x_adv_outside_ball_fails(task):
    err = run_cheat(task, LABEL, OUTSIDE_BALL)
    assert "outside the eps-ball" in err


@pytest.mark.slow
def test_query_outside_ball_fails(task):
    err = run_cheat(task, LABEL, QUERY_OUTSIDE_BALL)
    assert "invalid queries" in err


@pytest.mark.parametrize(
    "text,what",
    [(READ_WEIGHTS, "weights/mlp_digits.npz"), (READ_LABELS, "t10k-labels")],
    ids=["weights", "labels"],
)
def test_reading_model_or_data_fails(task, text, what):
    err = run_cheat(task, LABEL, text)
    # the environment's static policy refuses numpy's npyio now; the child's audit hook is the
    # second line for readers it does not list
    assert ("black-box violation" in err and what in err) or "allows no file I/O" in err, err


def test_plain_open_refused_by_policy(task):
    err = run_cheat(task, LABEL, PLAIN_OPEN)
    assert "policy" in err
