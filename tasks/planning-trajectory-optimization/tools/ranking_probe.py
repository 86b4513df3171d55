"""Ranking probe (README "Ranking against the original"): run baselines in-process (no child
process, the public draws of the systems, i.e. without the final evaluation's salt) at a
multiple of each system's model-step budget, and print the episode returns. Not part of the
harness; the budget is counted here as the harness counts it.

    python tools/ranking_probe.py METHODS BUDGET_MULTIPLES SEEDS SYSTEMS
    e.g. python tools/ranking_probe.py mppi,icem 1,16 0,1,2 pendulum,cartpole,reacher,acrobot"""

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TASK = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TASK / "repo"))
sys.path.insert(0, str(TASK / "hidden"))
sys.path.insert(0, str(TASK.parents[1] / "mlsbench_env"))  # taskkit, imported by harness.py
import env_hidden  # noqa: E402
import envs  # noqa: E402
from harness import BudgetExceeded, Spec  # noqa: E402

SYSTEMS = {**envs.ENVS, "acrobot": env_hidden.Acrobot}
TMP = Path(tempfile.mkdtemp(prefix="ranking-probe-"))


def load(name):
    """planner.py with the editable region (line 31 on) replaced by a baseline's."""
    src = (TASK / "repo" / "planner.py").read_text().splitlines(keepends=True)
    path = TMP / f"planner_{name}.py"
    path.write_text("".join(src[:30]) + (TASK / "baselines" / name / "planner.py").read_text())
    spec = importlib.util.spec_from_file_location(f"planner_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Model:
    """The planner's model for one control step: rollouts from the real state, budget counted."""

    def __init__(self, env, x, t):
        self.env, self.x, self.t = env, x, t
        self.budget, self.max_horizon, self._used = env.budget, env.max_horizon, 0

    @property
    def used(self):
        return self._used

    @property
    def remaining(self):
        return self.budget - self._used

    def rollout(self, actions, full=False):
        a = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        n, h = a.shape[:2]
        if h > self.max_horizon:
            raise ValueError(f"horizon {h} exceeds max_horizon {self.max_horizon}")
        if n * h > self.remaining:
            raise BudgetExceeded(f"{n} x {h} steps requested, {self.remaining} left")
        self._used += n * h
        return self.env.rollout(self.x, a, self.t, full)


def episode(env_cls, mod, seed, multiple):
    env = env_cls(seed, None)
    env.budget = env_cls.budget * multiple
    spec = Spec(
        {
            "obs_dim": int(env.observe(env.x0, 0).shape[0]),
            "act_dim": env.act_dim,
            "budget": env.budget,
            "max_horizon": env.max_horizon,
            "horizon": env.horizon,
            "episode_len": env.episode_len,
            "dt": env.dt,
        }
    )
    planner_seed = int(np.random.SeedSequence([int(seed), 7919]).generate_state(1)[0])
    agent = mod.Planner(spec, np.random.default_rng(planner_seed))
    x, total = env.x0.copy(), 0.0
    for t in range(env.episode_len):
        action = agent.plan(env.observe(x, t), t, Model(env, x, t))
        x, r = env.real_step(x, np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1, 1), t)
        total += r
    return total


def main():
    names, multiples, seeds, systems = (a.split(",") for a in sys.argv[1:5])
    mods = {n: load(n) for n in names}
    for system in systems:
        for multiple in (int(m) for m in multiples):
            for name in names:
                t0 = time.process_time()
                rets = [episode(SYSTEMS[system], mods[name], int(s), multiple) for s in seeds]
                row = {"system": system, "budget_x": multiple, "method": name}
                row["returns"] = [round(r, 1) for r in rets]
                row["mean"] = round(float(np.mean(rets)), 1)
                row["cpu_s"] = round(time.process_time() - t0, 1)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
