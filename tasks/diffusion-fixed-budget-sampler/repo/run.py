"""Run one setting: python run.py --problem NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, runs sampler.sample in the task kit's child against the
exact denoiser served from this process, and writes samples.npy + run.json to MLSBENCH_OUT.
"""
import sys


def main() -> int:
    import harness
    import problems
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    out_dir = out_dir_from_env()  # removed from os.environ before the child exists
    name, spec, args = setting_spec(problems.PROBLEMS, option="--problem")
    if args.problem:  # a named problem is drawn from its parameters
        spec = problems.make_spec(**spec)
    seed = run_seed()
    mixture, nfe, n = problems.build(spec)
    samples, record = harness.serve(mixture, nfe, n, problems.SIGMA_MIN, problems.SIGMA_MAX, seed)
    record["problem"] = name
    record["seed"] = seed
    write_artifacts(out_dir, record, arrays={"samples": samples}, record_name="run.json")
    print(f"[{record['problem']}] seed={seed} dim={mixture.d} n={n} "
          f"NFE used {record['nfe_used']}/{nfe} refused={record['refused_calls']} "
          f"status={record['status']} isolation={record['isolation']} wall={record['wall_s']}s")
    if record["error"]:  # the grader fails the setting with this message (from run.json)
        print(record["error"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
