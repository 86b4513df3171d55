"""Run one setting: python run.py --setting LABEL   (fixed file).

Reads MLSBENCH_SEED / MLSBENCH_OUT, trains build_model(cfg) (model.py) on the training columns
in a child process, predicts the test columns in another, and writes pred.npy (standardized
predictions) and result.json to MLSBENCH_OUT.  The test targets are not in this directory: the
R^2 and RMSE are computed by the grader.
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
    return harness.main_for(args.setting, spec["epochs"], spec["test_x"])


if __name__ == "__main__":
    sys.exit(main())
