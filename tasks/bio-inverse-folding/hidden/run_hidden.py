"""Run the held-out setting (fixed file, present only at the final evaluation)."""
import sys

import harness
import settings

LABEL = "held-out-fold"

if __name__ == "__main__":
    spec = dict(settings.SETTINGS["short"])
    sys.exit(harness.main_for(LABEL, spec, "data/fold_test_x.npy"))
