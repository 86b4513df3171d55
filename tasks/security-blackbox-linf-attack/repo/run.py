"""Run one setting: python run.py --setting NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, picks the attacked test images (correctly classified by the
target model), runs attack.attack in the task kit's least-privileged child against the model
served from this process, and writes x_clean.npy, x_adv.npy and run.json (per-sample queries and
success) to MLSBENCH_OUT.
"""
import os
import random
import sys


def main() -> int:
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    import harness

    out_dir = out_dir_from_env()  # removed from os.environ before the child exists

    import numpy as np
    import torch

    import data
    import models
    import settings

    name, cfg, args = setting_spec(settings.SETTINGS)
    if args.spec:
        name = os.path.splitext(name)[0]
    seed = run_seed()

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    x, y = data.load(cfg["dataset"], "test")
    side = x.shape[-1]
    model = models.load(cfg["arch"], side, os.path.join("weights", f"{cfg['arch']}_{cfg['dataset']}.npz"))
    # the attacked samples: a seeded random order of the test set, first n correctly classified
    order = np.random.default_rng(10_000 + seed).permutation(len(y))[: 4 * cfg["n"]]
    with torch.no_grad():
        pred = model(torch.from_numpy(x[order])).argmax(1).numpy()
    pick = order[pred == y[order]][: cfg["n"]]
    x0, y0 = np.ascontiguousarray(x[pick]), y[pick]
    del x, y

    x_adv, record = harness.serve(model, x0, y0, float(cfg["eps"]), int(cfg["budget"]), seed)
    record.update(setting=name, seed=seed, indices=pick.tolist())
    write_artifacts(out_dir, record, arrays={"x_clean": x0, "x_adv": x_adv}, record_name="run.json")
    q = np.array(record["queries"])
    s = np.array(record["success"], dtype=bool)
    print(f"[{name}] seed={seed} eps={cfg['eps']} budget={cfg['budget']} n={len(y0)} "
          f"success={s.mean():.3f} mean_queries(success)={q[s].mean() if s.any() else float('nan'):.1f} "
          f"status={record['status']} wall={record['wall_s']}s")
    if record["error"]:
        print(record["error"], file=sys.stderr)
    return 0  # the grader reads run.json and fails the setting on any recorded error


if __name__ == "__main__":
    sys.exit(main())
