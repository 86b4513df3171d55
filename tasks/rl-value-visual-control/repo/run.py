"""Run one setting: python run.py --game NAME  (or --spec FILE.json).  Fixed file.

Reads MLSBENCH_SEED / MLSBENCH_OUT, trains the fixed DQN-family agent on a MinAtar game with the
value head of value_head.py (served from a spawned child process), evaluates it, and writes
run.json to MLSBENCH_OUT (the training learning curve and its mean, the graded metric; the
evaluation returns).
"""
import argparse
import json
import os
import sys

# the visible settings' games, frame budgets and evaluation episodes (breakout: by hand only)
GAMES = {
    "space_invaders": dict(game="space_invaders", frames=100000, eval_episodes=32),
    "space_invaders_50k": dict(game="space_invaders", frames=50000, eval_episodes=32),
    "breakout": dict(game="breakout", frames=100000, eval_episodes=32),
}


def main() -> int:
    import harness
    from taskkit import out_dir_from_env, write_artifacts

    out_dir = out_dir_from_env()  # removed from os.environ before the child exists
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--game", choices=sorted(GAMES))
    g.add_argument("--spec")
    ap.add_argument("--frames", type=int, default=None, help="override (for quick local runs only)")
    args = ap.parse_args()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    if args.game:
        spec = dict(GAMES[args.game])
    else:
        with open(args.spec) as f:
            spec = json.load(f)
    frames = args.frames or spec["frames"]
    record = dict(setting=args.game or os.path.basename(args.spec), seed=seed, status="error", error=None)
    try:
        record.update(harness.train_and_evaluate(spec["game"], frames, spec["eval_episodes"], seed,
                                                 spec.get("sticky", 0.1)))
        record["status"] = "ok"
    except harness.RunFailure as e:
        record["error"] = str(e)
    write_artifacts(out_dir, record, record_name="run.json")
    if record["status"] == "ok":
        print(f"[{record['setting']}] seed={seed} frames={record['frames_used']} atoms={record['atoms']} "
              f"updates={record['updates']} mean training return={record['mean_train_return']:.2f} "
              f"eval mean return={record['mean_return']:.2f} "
              f"wall={record['wall_s']}s")
        print("CURVE " + json.dumps(dict(train_curve=record["train_curve"], eval_returns=record["eval_returns"],
                                          mean_return=record["mean_return"],
                                          mean_train_return=record["mean_train_return"])))
        return 0
    print(f"[{record['setting']}] seed={seed} FAILED: {record['error']}", file=sys.stderr)
    return 0  # run.json says why; the grader fails the setting with that message


if __name__ == "__main__":
    sys.exit(main())
