"""Run the held-out setting (fixed file, present only at the final evaluation)."""
import sys

import harness

LABEL = "d64-l2-int2-g64-s150"
SPEC = dict(model="d64-l2", bits=2, group_size=64, steps=150, batch_size=16, eval_windows=128)

if __name__ == "__main__":
    sys.exit(harness.main_for(LABEL, SPEC))
