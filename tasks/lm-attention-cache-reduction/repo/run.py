"""Run one setting: python run.py --setting LABEL   (fixed file)

Reads MLSBENCH_SEED and MLSBENCH_OUT, trains the GPT with the attention module of attention.py
in a child process, decodes validation text through its cache in two more, and writes run.json
(val_bpc, kv_bytes_per_token, parameter count, checks) to MLSBENCH_OUT.
"""
import sys

if __name__ == "__main__":
    import harness
    import settings

    sys.exit(harness.main(settings.SETTINGS))
