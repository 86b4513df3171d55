#!/usr/bin/env bash
# Calibrate every shipped task: `mlsbench calibrate` rewrites each task's anchors.json (hours of
# CPU for the whole set). Options go to every calibrate call; a failed task does not stop the rest.
#   scripts/calibrate_all.sh [--workers N] [--sandbox docker] [--dry-run]
# MLSBENCH names the command (default: mlsbench), e.g. MLSBENCH="python -m mlsbench_env.cli".
set -euo pipefail
mlsbench=(${MLSBENCH:-mlsbench})

ids=$("${mlsbench[@]}" list --json | python3 -c '
import json, sys
for task in json.load(sys.stdin):
    if task["error"]:
        print("skipped " + task["id"] + ": " + task["error"], file=sys.stderr)
    else:
        print(task["id"])
')
failed=()
for id in $ids; do
    echo "== $id"
    "${mlsbench[@]}" calibrate "$id" "$@" || failed+=("$id")
done
if ((${#failed[@]})); then
    echo "calibration failed: ${failed[*]}" >&2
    exit 1
fi
