#!/usr/bin/env bash
# Build the wheel, install it into a fresh venv under a temporary folder, and use it from there
# (not from this checkout): `mlsbench list` and a `gym.make` episode reset.
#   scripts/check_wheel.sh [--offline]
# --offline: no package index; the venv sees this Python's site-packages for the dependencies
# (and the wheel's build backend, hatchling, must be installed here).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
offline=${1:-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ $offline == --offline ]]; then
    "$python" -m pip wheel --no-deps --no-build-isolation -q -w "$tmp/dist" "$repo"
    "$python" -m venv --system-site-packages "$tmp/venv"
    install=(--no-deps)
else
    "$python" -m pip wheel --no-deps -q -w "$tmp/dist" "$repo"
    "$python" -m venv "$tmp/venv"
    install=()
fi
wheel=$(ls "$tmp"/dist/mlsbench_env-*.whl)
echo "built $(basename "$wheel")"
"$tmp/venv/bin/python" -m pip install -q "${install[@]}" "$wheel"

# run from the temporary folder, so nothing resolves to the checkout
cd "$tmp"
"$tmp/venv/bin/mlsbench" list
"$tmp/venv/bin/python" - "$tmp/venv" <<'PY'
import sys

import gymnasium as gym

import mlsbench_env

assert mlsbench_env.__file__.startswith(sys.argv[1]), f"imported {mlsbench_env.__file__}"
env = gym.make("mlsbench/opt-evolution-strategy-v0", runs_dir=None)
obs, info = env.reset(seed=0)
assert "## Question" in obs and info["tools"], obs[:200]
env.close()
print(f"gym.make and reset from the wheel: ok ({mlsbench_env.__file__})")
PY
