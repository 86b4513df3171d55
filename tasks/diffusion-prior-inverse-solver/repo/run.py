"""Run one setting: python run.py --problem NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, runs solver.solve in the task kit's child against the exact
denoiser served from this process (the prior's parameters never leave this process), and writes
samples.npy + run.json to MLSBENCH_OUT.
"""
import sys


def main() -> int:
    import harness
    import problems
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    out_dir = out_dir_from_env()  # removed from os.environ before the child exists
    name, spec, _ = setting_spec(problems.PROBLEMS, option="--problem")
    seed = run_seed()
    salt = problems.load_salt()
    prob = problems.build(spec, seed, salt)
    samples, record = harness.serve(prob, problems.SIGMA_MIN, problems.SIGMA_MAX, seed)
    record["problem"] = name
    record["seed"] = seed
    record["salted"] = salt != 0
    write_artifacts(out_dir, record, arrays={"samples": samples}, record_name="run.json")
    print(f"[{record['problem']}] seed={seed} dim={prob['prior'].d} m={prob['A'].shape[0]} "
          f"samples={prob['y'].shape[0]} NFE used {record['nfe_used']}/{prob['nfe']} "
          f"refused={record['refused_calls']} status={record['status']} "
          f"isolation={record['isolation']} wall={record['wall_s']}s")
    if record["error"]:   # the grader fails the setting with this message (from run.json)
        print(record["error"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
