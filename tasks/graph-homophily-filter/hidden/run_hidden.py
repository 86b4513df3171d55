"""Run the hidden setting (copied into the scaffold at the final evaluation only)."""

import sys

import harness
from hidden_settings import SETTINGS

if __name__ == "__main__":
    sys.exit(harness.main(SETTINGS))
