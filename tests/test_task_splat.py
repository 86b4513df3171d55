"""Trust tests for tasks/splat-densification: the Gaussian cap holds at every policy call (however
the policy tries to get past it: too many clones, phantom or negative indices, a forged cap in its
own copy of the statistics, an oversized or forged answer), the policy's process (the task kit's
least-privileged child, which reads policy.py only) cannot read the target images, the hidden
setting's files or the parent's /proc, nor write a fixed file, and the harness's analytic
gradients / the grader's checks are what they claim to be.

The cheats run through the real final evaluation with the static policy off (``lint=False``): the
boundary itself must stop them. Most fail at the first policy call (step 25): a few seconds each.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "splat-densification"
LABEL = "china-40px-cap80"  # the cheapest visible setting
HIDDEN = "hopper-44px-cap100"
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK
REPO = TASK_DIR / "repo"


def _load(name: str, path: Path):
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    # harness.py imports the task kit, which a workspace holds as the package taskkit/
    sys.modules.setdefault("taskkit", importlib.import_module("mlsbench_env.taskkit"))
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


def policy_running(body: str) -> str:
    """A policy whose first call runs ``body`` (numpy as np and os at hand) and then returns
    nothing (a run that gets through it scores as the default's no-op)."""
    inner = "".join("    " + line + "\n" for line in body.strip("\n").splitlines())
    return f"def densify(stats, rng):\n    import os\n    here = os.path.dirname(os.path.abspath(__file__))\n{inner}    return {{}}\n"


SITE = "os.path.dirname(os.path.dirname(np.__file__))"  # site-packages, as the policy finds it

# the fixed files a policy must not read: the target photograph (np.load, np.fromfile and numpy's
# own file opener, which no lint flags), the hidden setting's image and spec, and the photographs
# the images are cropped from as scikit-learn and matplotlib ship them
READS = {
    "np.load-data": (LABEL, "np.load(os.path.join(here, 'data', 'china.npy'))", "china.npy"),
    "np.fromfile-data": (
        LABEL,
        "np.fromfile(os.path.join(here, 'data', 'flower.npy'), dtype='u1', count=8)",
        "flower.npy",
    ),
    "numpy-opener": (
        LABEL,
        "np.lib._datasource._file_openers[None](os.path.join(here, 'data', 'china.npy'), 'rb').read()",
        "china.npy",
    ),
    "hidden-image": (HIDDEN, "np.load(os.path.join(here, 'hopper.npy'))", "hopper.npy"),
    "hidden-spec": (
        HIDDEN,
        "open(os.path.join(here, 'hidden_setting.json')).read()",
        "hidden_setting.json",
    ),
    "harness-images": (LABEL, "open(os.path.join(here, 'images.py')).read()", "images.py"),
    # the photographs as the installed packages ship them (the settings' sources)
    "packaged-china": (
        LABEL,
        f"np.fromfile(os.path.join({SITE}, 'sklearn', 'datasets', 'images', 'china.jpg'), dtype='u1')",
        "china.jpg",
    ),
    "packaged-hopper": (
        HIDDEN,
        f"np.fromfile(os.path.join({SITE}, 'matplotlib', 'mpl-data', 'sample_data', 'grace_hopper.jpg'), dtype='u1')",
        "grace_hopper.jpg",
    ),
}

# what the finding-style cheats reach for outside the task folder's files
OUT_OF_REACH = {
    "parent-cmdline": ("open(f'/proc/{os.getppid()}/cmdline').read()", "other processes"),
    "parent-environ": ("open(f'/proc/{os.getppid()}/environ').read()", "other processes"),
    "write-fixed-file": ("open(os.path.join(here, 'images.py'), 'a').write('#')", "for writing"),
    "write-harness": ("open(os.path.join(here, 'harness.py'), 'w')", "for writing"),
    "secrets-descriptor": (
        "assert 'MLSBENCH_SECRETS_FD' not in os.environ\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try:\n"
        "        assert 'memfd' not in os.readlink(f'/proc/self/fd/{fd}'), fd\n"
        "    except FileNotFoundError:\n"
        "        pass  # the listing's own descriptor\n"
        "raise RuntimeError('no secrets descriptor')",
        "no secrets descriptor",
    ),
}

# answers that are not actions: NaN indices, a mask of the wrong length, a frame forged on the
# kit's pipe (found through the garbage collector) that lies about its sizes, or is of a kind the
# parent does not expect
BROKEN = {
    "nan-indices": ("return {'clone': np.array([np.nan])}", "indices must be integers"),
    "short-mask": ("return {'prune': np.ones(3, dtype=bool)}", "boolean mask must have shape"),
    "unknown-key": ("return {'add': np.array([0])}", "unknown keys"),
    "not-a-dict": ("return [0, 1]", "must return a dict"),
}
FORGED_FRAME = """
import gc, struct
from multiprocessing.connection import Connection
conn = [o for o in gc.get_objects() if isinstance(o, Connection)][0]
conn.send_bytes({frame})
while True:
    pass
"""


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_forged_cap_in_stats_fails(task):
    err = run_cheat(task, LABEL, FORGED_CAP, lint=False)
    assert "Gaussian cap exceeded" in err and "the cap is 80" in err, err


@pytest.mark.slow
def test_one_over_cap_after_filling_fails(task):
    err = run_cheat(task, LABEL, ONE_OVER, lint=False)
    assert "Gaussian cap exceeded" in err and "81 Gaussians" in err, err


@pytest.mark.slow
@pytest.mark.parametrize("text", [PHANTOM, NEGATIVE], ids=["past-end", "negative"])
def test_phantom_indices_fail(task, text):
    err = run_cheat(task, LABEL, text, lint=False)
    assert "index out of range" in err, err


@pytest.mark.slow
def test_oversized_answer_fails(task):
    err = run_cheat(task, LABEL, HUGE, lint=False)
    assert "densification policy process sent a message over" in err, err


def test_reading_the_target_image_with_numpy_fails(task):
    """Quick: numpy's np.load of the photograph the targets are cropped from."""
    label, body, name = READS["np.load-data"]
    err = run_cheat(task, label, policy_running(body), lint=False)
    assert "policy violation" in err and name in err, err


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(set(READS) - {"np.load-data"}))
def test_fixed_and_hidden_files_are_out_of_reach(task, case):
    label, body, name = READS[case]
    err = run_cheat(task, label, policy_running(body), lint=False)
    assert "policy violation" in err and name in err, err


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(OUT_OF_REACH))
def test_the_parent_secrets_and_fixed_files_are_out_of_reach(task, case):
    body, named = OUT_OF_REACH[case]
    err = run_cheat(task, HIDDEN, policy_running(body), lint=False)
    assert named in err, err


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_answers_fail(task, case):
    body, named = BROKEN[case]
    err = run_cheat(task, LABEL, f"def densify(stats, rng):\n    {body}\n", lint=False)
    assert named in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "frame, named",
    [
        ("b'A' + struct.pack('<3q', 2, 0, 0) + bytes(8)", "malformed action message"),
        ("b'A' + struct.pack('<3q', -1, 0, 0)", "malformed action message"),
        ("b'D'", "protocol error"),
        ("b'A' + struct.pack('<3q', 0, 0, 10**6)", "malformed action message"),
    ],
    ids=["short", "negative-size", "early-done", "lying-size"],
)
def test_forged_frames_on_the_pipe_fail(task, frame, named):
    err = run_cheat(task, LABEL, policy_running(FORGED_FRAME.format(frame=frame)), lint=False)
    assert named in err, err


@pytest.mark.slow
def test_the_reference_baseline_still_scores_as_anchored(task):
    """Honest-code control: the reference (EDC + Taming 3DGS + AbsGS) on the quickest visible
    setting and the hidden one, in one final evaluation (the hidden setting's presence sends the
    salt and its spec over the secrets channel), reproduces its seed-0 anchors exactly."""
    assert_anchored(task, task.spec.reference_baseline, [LABEL, HIDDEN])


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
