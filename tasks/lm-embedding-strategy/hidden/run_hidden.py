"""Run the held-out setting (fixed file, present only at the final evaluation)."""
import sys

import harness

LABEL = "milton-d64-l2-ctx96"
SPEC = dict(d_model=64, n_layer=2, n_head=4, block_size=96, steps=250, batch_size=12,
            eval_windows=96)

if __name__ == "__main__":
    sys.exit(harness.main_for(LABEL, SPEC, "data/milton.txt"))
