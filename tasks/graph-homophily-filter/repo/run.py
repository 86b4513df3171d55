"""Run one setting: MLSBENCH_SEED=0 MLSBENCH_OUT=/tmp/out python run.py --setting csbm-mixed"""

import sys

import harness
from settings import SETTINGS

if __name__ == "__main__":
    sys.exit(harness.main(SETTINGS))
