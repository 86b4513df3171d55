"""Run one model-predictive-control episode with the planner in planner.py.

    MLSBENCH_SEED=0 MLSBENCH_OUT=/tmp/out python run.py --env pendulum

The episode's return and budget counters are printed; the artifact the grader checks is
written to $MLSBENCH_OUT/result.json (see harness.py for the protocol).
"""

import argparse

import harness


def main():
    from envs import ENVS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", required=True, choices=sorted(ENVS))
    args = parser.parse_args()
    harness.main(ENVS[args.env], f"{args.env}")


if __name__ == "__main__":
    main()
