"""Run one setting: python run.py --setting LABEL  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, trains with the compressor in compressor.py (every worker's
Compressor and the Aggregator in task kit children of their own), writes preds.npy + run.json.
"""
import sys


def main() -> int:
    from taskkit import out_dir_from_env, run_seed, setting_spec, write_artifacts

    import harness
    import settings

    out_dir = out_dir_from_env()  # removed from os.environ before any child exists
    name, spec, _ = setting_spec(settings.SETTINGS)
    seed = run_seed()
    preds, record = harness.train(spec, seed)
    record["setting"] = name
    record["seed"] = seed
    write_artifacts(out_dir, record, arrays={"preds": preds}, record_name="run.json")
    print(f"[{name}] seed={seed} K={record['workers']} params={record['numel']} "
          f"budget={record['budget_bits']} bits/worker/step, max sent={record['max_worker_bits']}, "
          f"mean sent={record['mean_worker_bits_per_step']:.0f}, rounds<={record['max_rounds']}, "
          f"steps={record['steps_done']}/{record['steps']}, train loss={record['final_train_loss']}, "
          f"wall={record['train_wall_s']}s status={record['status']}")
    if record["error"]:
        # the run is failed by the grader, which reads run.json (exit 0 so that it is called)
        print("RUN FAILED: " + record["error"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
