"""Run one setting: python run.py --setting NAME  (or --spec FILE.json).  Fixed file.

Trains PPO in this process under a fixed budget of env steps, with constraint.ConstraintHandler
in the task kit's child (harness.py), evaluates the final policy with deterministic actions on
fresh episodes, and writes run.json to MLSBENCH_OUT.
"""
import os
import random
import sys


def main() -> int:
    import harness
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    out_dir = out_dir_from_env()

    import numpy as np

    import settings

    name, cfg, args = setting_spec(settings.SETTINGS)
    if args.spec:
        name = os.path.splitext(name)[0]
    seed = run_seed()

    random.seed(seed)
    np.random.seed(seed)
    params, record = harness.serve(cfg["layout"], cfg, seed)
    record.update(setting=name, seed=seed)
    if record["error"] is None:
        try:
            R, C = harness.evaluate(cfg["layout"], cfg, params, seed)
            record.update(eval_returns=R.tolist(), eval_costs=C.tolist())
        except Exception as e:  # a broken policy fails the setting
            record["error"] = f"evaluation failed: {e}"
    record["status"] = "ok" if record["error"] is None else "failed"
    write_artifacts(out_dir, record, record_name="run.json")
    if record["train_curve_return"]:
        print("training curve, mean episode return/cost of each rollout: " + " ".join(
            f"{r:.2f}/{c:.2f}" for r, c in zip(record["train_curve_return"], record["train_curve_cost"])))
    if record["error"] is None:
        print(f"[{name}] seed={seed} eval_return={np.mean(R):.3f} eval_cost={np.mean(C):.2f} "
              f"limit={cfg['cost_limit']} steps={record['env_steps']} wall={record['train_wall_s']}s")
    else:
        print(record["error"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
