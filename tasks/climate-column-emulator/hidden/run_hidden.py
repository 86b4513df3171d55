"""Run the held-out setting (fixed file, present only at the final evaluation)."""
import sys

import harness

LABEL = "warm-climate"
EPOCHS = 10

if __name__ == "__main__":
    sys.exit(harness.main_for(LABEL, EPOCHS, "data/warm_test_x.npy"))
