"""Trust tests for tasks/splat-densification: the Gaussian cap holds at every policy call (however
the policy tries to get past it: too many clones, phantom or negative indices, a forged cap in its
own copy of the statistics, an oversized answer), the policy cannot read the target images, and the
harness's analytic gradients / the grader's checks are what they claim to be."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cheats import run_cheat

from mlsbench_env.spec import load_task

TASK = "splat-densification"
LABEL = "china-40px-cap80"  # the cheapest visible setting
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK
REPO = TASK_DIR / "repo"


def _load(name: str, path: Path):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the policy writes a huge cap into its own copy of the statistics, then fills "its" cap: the
# parent checks against the cap it owns
FORGED_CAP = """
def densify(stats, rng):
    stats["cap"] = 10 ** 6
    n = stats["n"]
    return {"clone": np.arange(n).repeat(4)}
"""

# an honest growth to exactly the cap, then one clone more in the next call
ONE_OVER = """
def densify(stats, rng):
    n, cap = stats["n"], stats["cap"]
    if n < cap:
        return {"clone": np.arange(cap - n) % n}
    return {"clone": np.array([0])}
"""

# phantom Gaussians: indices past the end (or negative, which numpy would wrap) to clone/split
PHANTOM = """
def densify(stats, rng):
    return {"split": np.array([stats["n"] + 3])}
"""
NEGATIVE = """
def densify(stats, rng):
    return {"prune": np.array([0]), "clone": np.array([-1, -2])}
"""

# an answer far larger than any legal one (memory exhaustion of the parent)
HUGE = """
def densify(stats, rng):
    return {"prune": np.arange(5_000_000)}
"""

# reads the target photograph through numpy's file opener (passes the static policy; the child's
# audit hook stops it)
READ_IMAGE = """
def densify(stats, rng):
    f = np.lib._datasource._file_openers[None]("data/china.npy", "rb")
    f.read()
    return {}
"""


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_forged_cap_in_stats_fails(task):
    err = run_cheat(task, LABEL, FORGED_CAP)
    assert "Gaussian cap exceeded" in err and "the cap is 80" in err, err


@pytest.mark.slow
def test_one_over_cap_after_filling_fails(task):
    err = run_cheat(task, LABEL, ONE_OVER)
    assert "Gaussian cap exceeded" in err and "81 Gaussians" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("text", [PHANTOM, NEGATIVE], ids=["past-end", "negative"])
def test_phantom_indices_fail(task, text):
    err = run_cheat(task, LABEL, text)
    assert "index out of range" in err, err


@pytest.mark.slow
def test_oversized_answer_fails(task):
    err = run_cheat(task, LABEL, HUGE)
    assert "indices in one call" in err, err


@pytest.mark.slow
def test_reading_target_image_fails(task):
    err = run_cheat(task, LABEL, READ_IMAGE)
    assert ("sandbox violation" in err and "china.npy" in err) or "allows no file I/O" in err, err


# ---------------------------------------------------------------- cheap checks of the harness


def test_check_actions_rules():
    h = _load("_splat_harness", REPO / "harness.py")
    i = lambda *a: np.array(a, dtype=np.int64)  # noqa: E731
    assert h.check_actions(i(0), i(1), i(2, 2), 10, 12, 25) == 12
    bad = [
        ((i(), i(), i(0, 0, 0)), 10, "Gaussian cap exceeded"),
        ((i(), i(1, 2, 3), i()), 11, "Gaussian cap exceeded"),
        ((i(10), i(), i()), 12, "out of range"),
        ((i(), i(-1), i()), 12, "out of range"),
        ((i(1, 1), i(), i()), 12, "unique"),
        ((i(1), i(), i(1)), 12, "only one of them"),
    ]
    for (p, s, c), cap, msg in bad:
        with pytest.raises(h.PolicyError, match=msg):
            h.check_actions(p, s, c, 10, cap, 25)


def test_analytic_gradients_match_autograd():
    import torch

    h = _load("_splat_harness2", REPO / "harness.py")
    h.DTYPE = torch.float64
    rng = np.random.default_rng(0)
    X0 = h.init_gaussians(20, 16, 20, rng)
    X0[:, 2:4] += rng.normal(0, 0.3, (20, 2))
    X0[:, 5] = rng.normal(size=20)
    X0[:, 6:9] = rng.uniform(0, 1, (20, 3))
    px, py = h.pixel_grid(16, 20)
    T = torch.rand(320, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X = torch.tensor(X0, requires_grad=True)
    img = h.render(X, px, py)
    img.retain_grad()
    ((img - T) ** 2).mean().backward()
    loss, g, absg, err, cover = h.step_stats(torch.tensor(X0), px, py, T)
    assert torch.allclose(g, X.grad, rtol=1e-9, atol=1e-14)
    # AbsGS statistic: per-pixel positional gradients, summed in absolute value (small image,
    # one backward pass per pixel)
    px, py, T = px[:24], py[:24], T[:24]
    Xs = torch.tensor(X0)
    img = h.render(Xs, px, py)
    r = 2 * (img - T) / img.numel()
    per_pixel = []
    for p in range(24):
        x = torch.tensor(X0, requires_grad=True)
        (h.render(x, px[p : p + 1], py[p : p + 1])[0] @ r[p]).backward()
        per_pixel.append(x.grad[:, :2])
    ref = torch.linalg.vector_norm(torch.stack(per_pixel).abs().sum(0), dim=1)
    absg = h.step_stats(Xs, px, py, T)[1 + 1]
    assert torch.allclose(absg, ref, rtol=1e-9, atol=1e-14)


def test_grader_rejects_over_cap_artifacts(tmp_path):
    grader = _load("_splat_grader", TASK_DIR / "grader.py")
    h = _load("_splat_harness3", REPO / "harness.py")
    rng = np.random.default_rng(0)
    X = h.init_gaussians(81, 40, 40, rng)
    np.savez(tmp_path / "params.npz", image0=X, image1=X[:10])
    rec = dict(
        setting=LABEL,
        seed=0,
        salted=False,
        status="ok",
        error=None,
        cap=80,
        max_n=80,
        images=[dict(max_n=80, counts=[12, 80]), dict(max_n=10, counts=[10])],
    )
    (tmp_path / "run.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="image 0 ends with 81 Gaussians"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)
    rec["images"][1]["counts"] = [12, 90, 10]
    (tmp_path / "run.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="Gaussian cap exceeded"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)
