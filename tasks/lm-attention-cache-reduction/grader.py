"""Trusted grader for lm-attention-cache-reduction (runs outside the sandbox).

The harness parent (repo/harness.py) computes val_bpc and kv_bytes_per_token from what its
children sent (logits and cache bytes) and writes run.json only after every child has exited;
the editable attention module never runs in that process. This grader checks the record
(setting, seed, status, parameter cap, the validation text it was measured on) and combines the
two measurements into the scored cost, with the cache budget and the parameter cap recomputed
from the pristine settings:

    cost = val_bpc + LAMBDA * max(0, log2(kv_bytes_per_token / budget))

budget = 1/8 of the float32 multi-head cache of the setting (d_model * n_layer bytes/token),
LAMBDA = 0.25 bits per character for each doubling of the cache above the budget.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

LAMBDA = 0.25


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _settings(task_dir: Path):
    settings = _load(task_dir / "repo" / "settings.py", "_kvc_grader_settings")
    table = dict(settings.SETTINGS)
    hidden = task_dir / "hidden" / "hidden_settings.py"
    if hidden.is_file():
        table.update(_load(hidden, "_kvc_grader_hidden").SETTINGS)
    return table, settings.kv_budget


def _param_cap(cfg: dict, vocab: int = 128) -> int:
    d = cfg["d_model"]
    per_layer = (4 * d * d + 4 * d) + (8 * d * d + 5 * d) + 4 * d
    default = vocab * d + cfg["block_size"] * d + cfg["n_layer"] * per_layer + 2 * d + d * vocab
    return int(1.10 * default)


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir, task_dir = Path(out_dir), Path(task_dir)
    table, kv_budget = _settings(task_dir)
    if setting not in table:
        raise ValueError(f"unknown setting {setting!r}")
    cfg = table[setting]
    path = out_dir / "run.json"
    if not path.is_file():
        raise RuntimeError("missing artifact run.json: the harness did not finish")
    rec = json.loads(path.read_text())
    if rec.get("setting") != setting or int(rec.get("seed", -1)) != int(seed):
        raise RuntimeError(
            f"run.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {setting!r} seed {seed}"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"setting failed: {rec.get('reason', 'unknown reason')}")
    known = {hashlib.sha1((task_dir / "repo" / "data" / "val.txt").read_bytes()).hexdigest()}
    final_val = task_dir / "hidden" / "final_val.txt"
    if final_val.is_file():
        known.add(hashlib.sha1(final_val.read_bytes()).hexdigest())
    if rec.get("val_sha1") not in known:
        raise ValueError("the run was measured on an unknown validation text")
    cap = _param_cap(cfg)
    n_params = int(rec.get("n_params", 1 << 62))
    if n_params > cap:
        raise ValueError(f"parameter cap exceeded: {n_params} > {cap}")
    bpc = float(rec["val_bpc"])
    kvb = float(rec["kv_bytes_per_token"])
    if not (math.isfinite(bpc) and bpc > 0 and math.isfinite(kvb) and kvb >= 0):
        raise ValueError(f"invalid measurements: val_bpc={bpc}, kv_bytes_per_token={kvb}")
    budget = kv_budget(cfg)
    over = math.log2(kvb / budget) if kvb > 0 else 0.0
    cost = bpc + LAMBDA * max(0.0, over)
    return {"cost": cost, "val_bpc": bpc, "kv_bytes_per_token": kvb, "kv_budget": budget}
