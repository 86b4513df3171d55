"""Run one setting: python run.py --setting NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, runs attention.attention in a task-kit child and the fixed
naive reference and matmul probe in another (see harness.py), and writes run.json (roofline
fraction, speed-up, peak memory, checks) to MLSBENCH_OUT.
"""

import os
import random
import sys

from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts


def main() -> int:
    import harness

    out_dir = out_dir_from_env()  # removed from os.environ before any child exists
    import numpy as np
    import settings

    name, cfg, args = setting_spec(settings.SETTINGS)
    if args.spec:
        name = os.path.splitext(name)[0]
    seed = run_seed()

    # the parent never imports torch (only the children do); its inputs
    # and checks draw from numpy generators seeded from the seed
    random.seed(seed)
    np.random.seed(seed)
    record = harness.measure(cfg, seed)
    record.update(setting=name, seed=seed)
    write_artifacts(out_dir, record, record_name="run.json")
    if record["status"] == "ok":
        print(
            f"[{name}] seed={seed} shape={tuple(record['shape'])} "
            f"roofline_fraction={record['roofline_fraction']:.3f} speedup={record['speedup']:.3f} "
            f"(IQR {record['speedup_iqr'][0]:.3f}-{record['speedup_iqr'][1]:.3f}, wall "
            f"{record['wall_speedup']:.3f}) peak_mem={record['peak_mem_bytes'] / 2**20:.2f} MiB "
            f"= {record['peak_mem_ratio']:.2f} x output (reference "
            f"{record['ref_peak_mem_bytes'] / 2**20:.2f} MiB, "
            f"reduction {record['mem_reduction']:.2f}) "
            f"max_speedup={record['max_speedup']:.2f} "
            f"max_rel_err={record['max_rel_error']:.1e} wall={record['wall_s']}s"
        )
    else:
        print(f"[{name}] seed={seed} FAILED: {record['error']}", file=sys.stderr)
    return 0  # the grader reads run.json and fails the setting on any recorded error


if __name__ == "__main__":
    sys.exit(main())
