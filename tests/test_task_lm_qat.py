"""Trust tests for tasks/lm-quantization-aware-training: every way to keep more precision than the
declared weight format fails the setting with a clear message and scores 0.

- a per-weight "scale" that stores the full-precision weight (codes all 1): wrong export format,
  caught by the export check the harness runs before training (fast);
- an 8-bit grid declared as 2-bit (codes up to 255): caught before training (fast);
- precision smuggled into the master weights in place (a projection outside the optimizer):
  caught at the first step (fast);
- the child's own checks defeated (codes returned as a tensor subclass whose max() lies), so that
  8-bit codes reach the parent: the parent's check of the raw uint8 codes catches it (slow: the
  cheat trains a whole setting);
- export changing a float parameter gains nothing: the parent rebuilds the model from its own
  copy of the float parameters (the boundary tests below).
Pure-python checks of the grader on crafted artifacts (extra arrays, codes above 2^bits - 1,
float32 scales) run without the sandbox.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from cheats import assert_anchored, run_cheat

from mlsbench_env.spec import load_task

TASK = "lm-quantization-aware-training"
LABEL = "d64-l2-int2-g32-s300"  # a visible setting
TASK_DIR = Path(__file__).resolve().parents[1] / "tasks" / TASK

HEAD = """import math

import torch
import torch.nn as nn


class Quantizer(nn.Module):
    def __init__(self, weight, bits, group_size):
        super().__init__()
        self.bits = bits
        self.group_size = group_size

    def forward(self, weight, progress):
        return weight

    def penalty(self, weight, progress):
        return None
"""

# 1. "keeps full-precision weights": codes all 1, zero 0 and one scale PER WEIGHT = the weight
FULL_PRECISION_SCALE = (
    HEAD
    + """
    def export(self, weight):
        return torch.ones_like(weight), weight.clone(), torch.zeros_like(weight)
"""
)

# 2. more levels per group than allowed: an 8-bit grid exported in a 2-bit setting
EIGHT_BIT_CODES = (
    HEAD
    + """
    def export(self, weight):
        o, i = weight.shape
        w = weight.reshape(o, i // self.group_size, self.group_size)
        scale = (w.abs().amax(dim=-1) / 127).clamp(min=1e-8)
        codes = torch.clamp(torch.round(w / scale[..., None]) + 128, 0, 255)
        return codes.reshape(o, i), scale, torch.full_like(scale, 128.0)
"""
)

# 3. the master weight rewritten in place inside the training forward (training outside the
#    fixed optimizer; could also hide information in it)
IN_PLACE = (
    HEAD.replace(
        """    def forward(self, weight, progress):
        return weight
""",
        """    def forward(self, weight, progress):
        with torch.no_grad():
            weight.mul_(1.0001)
        return weight
""",
    )
    + """
    def export(self, weight):
        o, i = weight.shape
        return torch.zeros(o, i), torch.ones(o, i // self.group_size), torch.zeros(o, i // self.group_size)
"""
)

# 4. the child's checks defeated: the codes come back as a tensor subclass whose max() lies, so
#    the child accepts 8-bit codes; the parent re-checks the raw uint8 codes it receives
#    (patching torch itself is refused by the policy)
PATCHED_CHILD = EIGHT_BIT_CODES.replace(
    "class Quantizer(nn.Module):",
    "class LyingCodes(torch.Tensor):\n"
    "    def max(self, *args, **kwargs):\n"
    "        return torch.zeros(())\n\n\n"
    "class Quantizer(nn.Module):",
).replace(
    "        return codes.reshape(o, i), scale, torch.full_like(scale, 128.0)",
    "        return codes.reshape(o, i).as_subclass(LyingCodes), scale, torch.full_like(scale, 128.0)",
)


@pytest.fixture(scope="module")
def task():
    return load_task(TASK)


def test_full_precision_scale_fails(task):
    err = run_cheat(task, LABEL, FULL_PRECISION_SCALE)
    assert "scale must have shape" in err and "before training" in err, err


def test_more_levels_than_bits_fails(task):
    err = run_cheat(task, LABEL, EIGHT_BIT_CODES)
    assert "codes must lie in 0..3" in err, err


@pytest.mark.slow
def test_in_place_master_weight_fails(task):
    err = run_cheat(task, LABEL, IN_PLACE)
    assert "changed outside the fixed optimizer" in err, err


@pytest.mark.slow
def test_patched_child_checks_caught_by_parent(task):
    err = run_cheat(task, LABEL, PATCHED_CHILD)
    assert "above 3" in err and "levels per group" in err, err


# ---------------------------------------------------------------- grader on crafted artifacts


def _grader():
    spec = importlib.util.spec_from_file_location("_lmqat_test_grader", TASK_DIR / "grader.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _artifacts(tmp_path: Path, bits=2, g=32, d=64, n_layer=2, seed=0):
    """A valid-format quantized model (random codes) plus result.json for LABEL."""
    rng = np.random.default_rng(seed)
    arrays = {"float/tok": rng.normal(0, 0.02, (256, d)).astype(np.float32)}
    for layer in range(n_layer):
        for ln in ("ln1", "ln2"):
            arrays[f"float/blocks.{layer}.{ln}.weight"] = np.ones(d, np.float32)
            arrays[f"float/blocks.{layer}.{ln}.bias"] = np.zeros(d, np.float32)
    arrays["float/ln_f.weight"] = np.ones(d, np.float32)
    arrays["float/ln_f.bias"] = np.zeros(d, np.float32)
    for layer in range(n_layer):
        for nm, (o, i) in (
            ("qkv", (3 * d, d)),
            ("proj", (d, d)),
            ("fc", (4 * d, d)),
            ("out", (d, 4 * d)),
        ):
            k = f"blocks.{layer}.{nm}"
            arrays[f"codes/{k}"] = rng.integers(0, 2**bits, (o, i)).astype(np.uint8)
            arrays[f"scale/{k}"] = np.full((o, i // g), 0.01, np.float16)
            arrays[f"zero/{k}"] = np.full((o, i // g), 2 ** (bits - 1), np.float16)
    rec = dict(
        setting=LABEL, seed=seed, status="ok", bits=bits, group_size=g, steps=300, batch_size=16
    )
    (tmp_path / "result.json").write_text(json.dumps(rec))
    return arrays


def _write(tmp_path, arrays):
    np.savez(tmp_path / "quantized.npz", **arrays)


def test_grader_accepts_valid_and_rejects_smuggling(tmp_path):
    grader = _grader()
    arrays = _artifacts(tmp_path)
    _write(tmp_path, arrays)
    out = grader.grade(LABEL, 0, tmp_path, TASK_DIR)
    assert np.isfinite(out["bpc"]) and out["bpc"] > 0

    # an extra array (full-precision copy of a matrix) beside the declared format
    bad = dict(arrays, **{"extra/blocks.0.qkv": np.zeros((192, 64), np.float32)})
    _write(tmp_path, bad)
    with pytest.raises(ValueError, match="other arrays than the fixed model's"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)

    # codes above 2^bits - 1 (more levels per group than 2 bits allow)
    bad = dict(arrays)
    bad["codes/blocks.1.fc"] = bad["codes/blocks.1.fc"].copy()
    bad["codes/blocks.1.fc"][0, 0] = 200
    _write(tmp_path, bad)
    with pytest.raises(ValueError, match="more than 2\\^2 levels per group"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)

    # float32 scales (more precision than the float16 format)
    bad = dict(arrays)
    bad["scale/blocks.0.out"] = bad["scale/blocks.0.out"].astype(np.float32)
    _write(tmp_path, bad)
    with pytest.raises(ValueError, match="finite float16"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)

    # settings are taken from the task, not from the artifacts
    rec = json.loads((tmp_path / "result.json").read_text())
    rec["bits"] = 8
    (tmp_path / "result.json").write_text(json.dumps(rec))
    _write(tmp_path, arrays)
    with pytest.raises(ValueError, match="the setting fixes 2"):
        grader.grade(LABEL, 0, tmp_path, TASK_DIR)


# ------------------------------------------- the boundary itself (the static policy switched off)
# Each cheat runs with lint=False: the lint would stop most of them first, and these tests check
# that the task kit's child (Landlock, its own uid, the guard) and the parent's own checks do.

PROBE = (
    HEAD.replace("import math\n", "import math\nimport os\n\nimport numpy as np\n").replace(
        "        self.group_size = group_size\n",
        "        self.group_size = group_size\n"
        "        here = os.path.dirname(os.path.abspath(__file__))\n"
        "        {build}\n",
    )
    + """
    def export(self, weight):
        o, i = weight.shape
        g = self.group_size
        return torch.zeros(o, i), torch.ones(o, i // g), torch.zeros(o, i // g)
"""
)


def probe(build: str) -> str:
    return PROBE.replace("{build}", build)


def test_reading_validation_text_via_numpy_fails(task):
    # np.fromfile, which no lint flags: fine-tuning on the text the model is scored on
    cheat = probe('np.fromfile(os.path.join(here, "data", "valid.txt"), np.uint8)')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "valid.txt" in err, err


@pytest.mark.slow
def test_reading_checkpoint_via_numpy_fails(task):
    # the full-precision checkpoint reaches the child only as the parent's arguments
    cheat = probe('np.load(os.path.join(here, "checkpoints", "d64-l2.npz"))["tok"]')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "d64-l2.npz" in err, err


@pytest.mark.slow
def test_reading_parent_cmdline_fails(task):
    cheat = probe('open(f"/proc/{os.getppid()}/cmdline", "rb").read()')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "/cmdline" in err and "other processes are off limits" in err, err  # the guard


@pytest.mark.slow
def test_writing_a_fixed_file_fails(task):
    cheat = probe('open(os.path.join(here, "settings.py"), "a").write("LR = 1.0")')
    err = run_cheat(task, LABEL, cheat, lint=False)
    assert "policy violation" in err and "for writing" in err, err


@pytest.mark.slow
def test_in_place_master_weight_without_lint_fails(task):
    err = run_cheat(task, LABEL, IN_PLACE, lint=False)
    assert "changed outside the fixed optimizer during step 0" in err, err


@pytest.mark.slow
def test_reference_baseline_scores_as_anchored(task):
    assert_anchored(task, task.spec.reference_baseline, [LABEL], lint=False)
