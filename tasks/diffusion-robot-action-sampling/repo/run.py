"""Run one setting: python run.py --problem NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, rolls out every episode of the setting in closed loop with
the sampler (sampler.sample, run in the task kit's child) asking the denoiser served from this process,
and writes actions.npy (the executed actions) + run.json to MLSBENCH_OUT. It also prints the
success rate and the modes taken (the grader recomputes them from the actions).
"""
import sys


def main() -> int:
    import numpy as np

    import denoiser
    import harness
    import problems
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    out_dir = out_dir_from_env()  # removed from os.environ before the child exists
    name, spec, _ = setting_spec(problems.PROBLEMS, option="--problem")
    spec["name"] = name
    seed = run_seed()
    salt = problems.load_salt()
    env, inst = problems.instances(spec, seed, salt)
    model = denoiser.Denoiser(env.name)
    child_seed = [int(seed), 4049, int(spec["base_seed"])]
    actions, record = harness.rollout(env, inst, model, int(spec["nfe"]), child_seed,
                                      denoiser.T_MIN, denoiser.T_MAX)
    record.update(problem=spec["name"], seed=seed, salted=salt != 0)
    write_artifacts(out_dir, record, arrays={"actions": actions}, record_name="run.json")
    msg = f"[{record['problem']}] seed={seed} env={env.name} episodes={record['episodes']} " \
          f"NFE/chunk max {record['nfe_max_per_chunk']}/{record['nfe_budget']} refused={record['refused_calls']} " \
          f"status={record['status']} isolation={record['isolation']} wall={record['wall_s']}s"
    if actions is not None:
        states = [env.init_state(inst)]
        for k in range(actions.shape[1]):
            states.append(env.step(states[-1], actions[:, k]))
        success, mode = env.outcome(np.stack(states, 1), inst)
        msg += f" success={success.mean():.3f} mode+1={(mode[success] > 0).mean() if success.any() else 0:.3f}"
    print(msg)
    if record["error"]:  # the grader fails the setting with this message (from run.json)
        print(record["error"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
