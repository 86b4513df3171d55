"""Run one setting: python run.py --setting LABEL   (fixed file).

Reads MLSBENCH_SEED / MLSBENCH_OUT, trains the model (embedding.py + the fixed body) on
data/train.txt in a child process, evaluates it on the validation play in another, and writes
result.json (bits per character, checks) and nll.npy (per-character loss in nats) to MLSBENCH_OUT.
"""
import argparse
import sys


def main() -> int:
    import harness
    import settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", required=True, choices=sorted(settings.SETTINGS))
    args = ap.parse_args()
    spec = settings.SETTINGS[args.setting]
    return harness.main_for(args.setting, spec, spec["eval_text"])


if __name__ == "__main__":
    sys.exit(main())
