"""Fixed harness: plays the bandit policy of policy.py on one setting.

    python run.py --setting bernoulli-k10

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json and
arms.npy; `out` in a run by hand).

This parent process draws the instances (means, change points, parameters, contexts) from the
seed and the instance key and draws every reward; the policy runs in a child process (the task
kit's Child: it reads policy.py and nothing else of this folder, writes only its scratch folder
and cannot see this process) and learns only the contexts and the rewards of the arms it pulled,
one step at a time. The parent records every pulled arm; after the child has exited it writes
arms.npy and result.json, from which the grader recomputes the regret.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import bandits
from taskkit import Child, RunFailure, out_dir_from_env, read_secret, run_seed, setting_spec
from taskkit import write_artifacts


def _play(child, inst: bandits.Instance):
    R, K, T = inst.n_runs, inst.n_arms, inst.horizon
    pulled = np.empty((T, R), dtype=np.int16 if K < 32768 else np.int32)
    rows = np.arange(R)
    regret = uniform = 0.0
    ctx, means = inst.step(0)
    child.send(b"C", b"" if ctx is None else ctx.astype("<f8").tobytes())
    for t in range(T):
        arms = np.frombuffer(child.expect(b"A", size=4 * R), dtype="<i4")
        if arms.min() < 0 or arms.max() >= K:
            raise RunFailure(f"step {t}: an arm outside [0, {K})")
        pulled[t] = arms
        rewards = inst.rewards(means, arms)
        best = means.max(axis=1)
        regret += float((best - means[rows, arms]).sum())
        uniform += float((best - means.mean(axis=1)).sum())
        if t + 1 < T:
            ctx, means = inst.step(t + 1)
        payload = rewards.tobytes()
        if ctx is not None and t + 1 < T:
            payload += ctx.astype("<f8").tobytes()
        child.send(b"R", payload)
        if (t + 1) % max(1, T // 5) == 0:
            print(f"[harness] step {t + 1:>6d}/{T}  normalized regret so far "
                  f"{regret / max(uniform, 1e-12):.4f}", flush=True)
    child.expect(b"D", size=0)
    return pulled, {"regret": regret, "uniform_regret": uniform,
                    "normalized_regret": regret / uniform}


def main(argv=None):
    name, spec, _ = setting_spec(bandits.SETTINGS, argv=argv)
    spec = bandits.check_spec(spec)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (bandits.PUBLIC_KEY, "public")
    inst = bandits.Instance(name, spec, seed, key)
    print(f"[harness] {name}: {spec['kind']} K={inst.n_arms} T={inst.horizon} "
          f"runs={inst.n_runs} seed={seed}", flush=True)
    t0 = time.time()
    try:
        with Child("arena:child_main", inst.n_runs, inst.n_arms, inst.horizon, inst.dim, seed,
                   may_read=["policy.py"], name="policy") as child:
            pulled, score = _play(child, inst)
            isolation = child.isolation
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the policy process exited with code {code} after it was done")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    record = {"setting": name, "spec": spec, "seed": seed, "instance": instance,
              "isolation": isolation, **score}
    write_artifacts(out, record, arrays={"arms": pulled})
    print(f"[harness] done: normalized regret {score['normalized_regret']:.4f} "
          f"(regret {score['regret'] / inst.n_runs:.1f} per run; {time.time() - t0:.1f} s)",
          flush=True)


if __name__ == "__main__":
    main()
