"""Trusted grader for rl-value-visual-control (runs outside the sandbox).

The harness parent (fixed code) owns the MinAtar environments, the frame counter, the network,
the optimizer and the evaluation episodes; the value head ran in a separate process that only
saw network outputs. The parent wrote run.json after that process exited. This grader rebuilds
the setting's budget from the pristine task files (never from the run's artifacts), checks the
record against it (game, frames used = the budget, head size within the cap, the number of
evaluation episodes, a learning curve of ten finite points) and returns the metric:
  mean_train_return  the mean over the ten tenths of the frame budget of the mean undiscounted
                     return of the training episodes that ended in that tenth (the area under
                     the learning curve, how fast the agent learns), higher is better. A tenth
                     in which no episode ended counts the running games' returns so far.
The evaluation episodes' mean return stays in run.json for the agent; it is not graded (its seed
spread is as large as the gaps between methods or larger, see the task README).
"""
from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

SETTINGS = {
    "space-invaders": ("game", "space_invaders"),
    "space-invaders-50k": ("game", "space_invaders_50k"),
    "hidden": ("spec", "extra_game.json"),
}
MAX_ATOMS = 128
CURVE_POINTS = 10


def setting_spec(setting: str, task_dir: Path) -> tuple[dict, str]:
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    if kind == "game":
        games = runpy.run_path(str(task_dir / "repo" / "run.py"))["GAMES"]
        return dict(games[name]), name
    return json.loads((task_dir / "hidden" / name).read_text()), name


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    spec, name = setting_spec(setting, task_dir)
    rec_path = Path(out_dir) / "run.json"
    if not rec_path.is_file():
        raise ValueError("no run.json in the output directory: the harness did not finish "
                         "(crash or timeout)")
    rec = json.loads(rec_path.read_text())
    if rec.get("status") != "ok":
        raise ValueError(f"the run failed: {rec.get('error')}")
    if rec.get("setting") != name or rec.get("game") != spec["game"]:
        raise ValueError(f"run.json is for {rec.get('setting')!r}/{rec.get('game')!r}, "
                         f"expected {name!r}")
    if int(rec.get("seed", -1)) != int(seed):
        raise ValueError(f"run.json is for seed {rec.get('seed')}, expected {seed}")
    budget = int(spec["frames"])
    if int(rec.get("frames_used", -1)) != budget or int(rec.get("frames", -1)) != budget:
        raise ValueError(f"frame budget violated: the run used {rec.get('frames_used')} frames, "
                         f"the budget is {budget}")
    atoms = int(rec.get("atoms", -1))
    if not 1 <= atoms <= MAX_ATOMS:
        raise ValueError(f"head size violated: {atoms} outputs per action, allowed 1..{MAX_ATOMS}")
    rets = rec.get("eval_returns")
    if not isinstance(rets, list) or len(rets) != int(spec["eval_episodes"]):
        raise ValueError(f"expected {spec['eval_episodes']} evaluation episodes, got "
                         f"{None if not isinstance(rets, list) else len(rets)}")
    if not all(isinstance(r, (int, float)) and math.isfinite(r) for r in rets):
        raise ValueError("non-finite evaluation return")
    curve = rec.get("train_curve")
    if not isinstance(curve, list) or len(curve) != CURVE_POINTS or not all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in curve
    ):
        raise ValueError(
            f"expected a learning curve of {CURVE_POINTS} finite points, got {curve!r}"
        )
    return {"mean_train_return": sum(curve) / CURVE_POINTS}
