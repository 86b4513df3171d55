"""Trusted grader: reads run.json, written by the harness's parent process after the candidate's
process had exited, re-checks it and returns the metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

TOL = 1e-4  # the harness's exactness tolerance: max |out - ref| <= TOL * max|v|
# the metrics' bounds (task.yaml) and the timing noise allowed above the roofline: a value past
# them is physically impossible, so the measurement was tampered with (a global torch mode that
# outlived the candidate once slowed the probe eightfold: fractions of 2.6-5.1)
ROOFLINE_BOUND, MEM_BOUND, NOISE = 1.0, 100.0, 0.05

# label -> (name in run.json, (B, H, T, D)): must match repo/settings.py and hidden/*.json
SETTINGS = {
    "t512-h8-d64": ("t512-h8-d64", (1, 8, 512, 64)),
    "t1024-h4-d128": ("t1024-h4-d128", (1, 4, 1024, 128)),
    "t2048-h2-d64": ("t2048-h2-d64", (1, 2, 2048, 64)),
    "b2-t1200-h2-d80": ("b2-t1200-h2-d80", (2, 2, 1200, 80)),
}


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}")
    name, shape = SETTINGS[setting]
    rec_path = Path(out_dir) / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    if rec.get("setting") != name or int(rec.get("seed", -1)) != seed:
        raise ValueError(
            f"run.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {name!r} seed {seed}"
        )
    if rec.get("violation"):
        raise ValueError("policy violation: " + str(rec["violation"]))
    if rec.get("status") != "ok":
        raise ValueError(f"the attention run failed: {rec.get('error')}")
    if tuple(rec.get("shape", ())) != shape:
        raise ValueError(f"run.json has shape {rec.get('shape')}, expected {list(shape)}")
    if float(rec.get("tol", -1)) != TOL:
        raise ValueError("run.json: unexpected exactness tolerance")
    err = float(rec.get("max_rel_error", math.inf))
    if not err <= TOL:
        raise ValueError(f"inexact attention: max |out - ref| / max|v| = {err:.3e} > {TOL:g}")
    frac = float(rec.get("roofline_fraction", math.nan))
    mem = float(rec.get("mem_reduction", math.nan))
    if not (math.isfinite(frac) and frac > 0 and math.isfinite(mem) and mem > 0):
        raise ValueError("run.json: missing or invalid roofline_fraction / mem_reduction")
    if frac > ROOFLINE_BOUND * (1 + NOISE) or mem > MEM_BOUND:
        raise ValueError(
            f"physically impossible measurement (roofline fraction {frac:.3g}, bound "
            f"{ROOFLINE_BOUND:g}; memory reduction {mem:.3g}, bound {MEM_BOUND:g}): the probe "
            "or the reference was disturbed by the candidate"
        )
    return {"roofline_fraction": frac, "mem_reduction": mem}
