"""Trusted grader for diffusion-robot-action-sampling (runs outside the sandbox).

Checks the run record written by the harness parent (the per-chunk NFE budget, no refused call,
the right problem and number of chunks) and the executed actions (shape, finite, in [-1, 1]),
rebuilds the episodes' start instances from the pristine task files (never from the run's
artifacts), replays the executed actions through the environment and computes:
  success        the closed-loop success rate over the setting's episodes.
  mode_coverage  success rate x the binary entropy (bits) of the mode taken by the successful
                 episodes (reach: the side on which the robot passes the obstacle; pendulum: the
                 direction of the first swing). The expert takes both modes with probability 1/2,
                 so it scores its success rate; a policy that always takes the same mode scores 0.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

SETTINGS = {
    "reach-nfe2": ("problem", "reach-nfe2"),
    "reach-nfe4": ("problem", "reach-nfe4"),
    "reach-wide-nfe3": ("spec", "extra_problem.json"),
}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def problem(setting: str, seed: int, task_dir: Path, salted: bool):
    """-> (env class, instances, spec) rebuilt from the pristine task files."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {sorted(SETTINGS)}")
    kind, name = SETTINGS[setting]
    task_dir = Path(task_dir)
    envs = _load(task_dir / "repo" / "envs.py", "_drs_grader_envs")
    problems = _load(task_dir / "repo" / "problems.py", "_drs_grader_problems")
    if kind == "problem":
        spec = dict(problems.PROBLEMS[name], name=name)
    else:
        spec = dict(json.loads((task_dir / "hidden" / name).read_text()), name=name)
    salt = problems.load_salt(task_dir / "hidden" / "salt.json") if salted else 0
    env = envs.ENVS[spec["env"]]
    rng = np.random.default_rng([int(spec["base_seed"]), int(seed), int(salt)])
    inst = env.instances(rng, int(spec["episodes"]), **spec.get("instance", {}))
    return env, inst, spec


def binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-(p * np.log2(p) + (1 - p) * np.log2(1 - p)))


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    out_dir = Path(out_dir)
    rec_path = out_dir / "run.json"
    if not rec_path.is_file():
        raise RuntimeError("no run.json in the output directory: the harness did not finish")
    rec = json.loads(rec_path.read_text())
    env, inst, spec = problem(setting, seed, task_dir, bool(rec.get("salted", False)))
    nfe, n = int(spec["nfe"]), int(spec["episodes"])
    if rec.get("problem") != spec["name"] or int(rec.get("seed", -1)) != int(seed):
        raise RuntimeError(
            f"run.json is for problem {rec.get('problem')!r} seed {rec.get('seed')}, "
            f"expected {spec['name']!r} seed {seed}"
        )
    if rec.get("status") != "ok":
        raise RuntimeError(f"the sampler run failed: {rec.get('error')}")
    if int(rec.get("refused_calls", 0)) > 0:
        raise RuntimeError(
            f"NFE budget exceeded: the sampler attempted more than {nfe} denoiser calls "
            f"for an action chunk ({rec['refused_calls']} calls refused)"
        )
    calls = [int(c) for c in rec.get("calls_per_chunk", [])]
    n_chunks = -(-env.max_steps // env.execute)
    if (
        int(rec.get("nfe_budget", -1)) != nfe
        or len(calls) != n_chunks
        or any(c < 0 or c > nfe for c in calls)
    ):
        raise RuntimeError(
            f"NFE budget violated or inconsistent run record: budget {nfe} per chunk, "
            f"{n_chunks} chunks expected, calls per chunk {calls}"
        )
    path = out_dir / "actions.npy"
    if not path.is_file():
        raise RuntimeError("no actions.npy in the output directory")
    acts = np.load(path, allow_pickle=False)
    if acts.dtype != np.float64 or acts.shape != (n, env.max_steps, env.act_dim):
        raise RuntimeError(
            f"actions must be float64 of shape {(n, env.max_steps, env.act_dim)}, "
            f"got {acts.dtype} {acts.shape}"
        )
    if not np.all(np.isfinite(acts)) or np.abs(acts).max() > 1.0:
        raise RuntimeError("executed actions are not finite or outside [-1, 1]")
    states = [env.init_state(inst)]
    for k in range(env.max_steps):
        states.append(env.step(states[-1], acts[:, k]))
    success, mode = env.outcome(np.stack(states, 1), inst)
    rate = float(success.mean())
    p = float((mode[success] > 0).mean()) if success.any() else 0.0
    return {"success": rate, "mode_coverage": rate * binary_entropy(p)}
