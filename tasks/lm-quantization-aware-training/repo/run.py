"""Run one setting: python run.py --setting LABEL   (fixed file).

Reads MLSBENCH_SEED / MLSBENCH_OUT, fine-tunes the pretrained model with quantizer.py in a child
process on data/train.txt, exports the quantized matrices, rebuilds and evaluates the quantized
model in this process on data/valid.txt, and writes result.json (bits per character, checks) and
quantized.npz (the integer codes, float16 scales / zero points and float parameters evaluated) to
MLSBENCH_OUT.
"""
import argparse
import sys


def main() -> int:
    import harness
    import settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", required=True, choices=sorted(settings.SETTINGS))
    args = ap.parse_args()
    return harness.main_for(args.setting, settings.SETTINGS[args.setting])


if __name__ == "__main__":
    sys.exit(main())
