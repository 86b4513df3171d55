"""Run one setting: python run.py --setting LABEL   (fixed file).

Reads MLSBENCH_SEED / MLSBENCH_OUT, trains build_model(cfg) (model.py) on the training backbones
and sequences in a child process, designs the test backbones in another, and writes pred.npy
(per-residue log-probabilities) and result.json to MLSBENCH_OUT.  The test sequences are not in
this directory: recovery and perplexity are computed by the grader.
"""

import argparse
import sys


def main() -> int:
    import harness
    import settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", required=True, choices=sorted(settings.SETTINGS))
    label = ap.parse_args().setting
    return harness.main_for(label, settings.SETTINGS[label], settings.SETTINGS[label]["test_x"])


if __name__ == "__main__":
    sys.exit(main())
