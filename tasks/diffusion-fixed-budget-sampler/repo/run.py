"""Run one setting: python run.py --problem NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, runs sampler.sample in a spawn child against the exact
denoiser served from this process, and writes samples.npy + run.json to MLSBENCH_OUT.
"""
import argparse
import os
import sys


def main() -> int:
    import harness
    import problems

    out_dir = harness.out_dir_from_env()  # removed from os.environ before the child exists
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--problem", choices=sorted(problems.PROBLEMS))
    g.add_argument("--spec")
    args = ap.parse_args()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    spec = problems.load_spec(problem=args.problem, spec_path=args.spec)
    mixture, nfe, n = problems.build(spec)
    samples, record = harness.serve(mixture, nfe, n, problems.SIGMA_MIN, problems.SIGMA_MAX, seed)
    record["problem"] = args.problem or os.path.basename(args.spec)
    record["seed"] = seed
    harness.write_artifacts(out_dir, samples, record)
    print(f"[{record['problem']}] seed={seed} dim={mixture.d} n={n} "
          f"NFE used {record['nfe_used']}/{nfe} refused={record['refused_calls']} "
          f"status={record['status']} wall={record['wall_s']}s")
    if record["error"]:
        print(record["error"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
