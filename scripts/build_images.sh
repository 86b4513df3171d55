#!/usr/bin/env bash
# Build the docker backend's sandbox images where their recipe (sandbox/) changed, then show
# them and the engine. Options go to `mlsbench images build` (e.g. --force).
#   scripts/build_images.sh [--force]
# MLSBENCH names the command (default: mlsbench), e.g. MLSBENCH="python -m mlsbench_env.cli".
set -euo pipefail
mlsbench=(${MLSBENCH:-mlsbench})

"${mlsbench[@]}" images build "$@"
"${mlsbench[@]}" images list
"${mlsbench[@]}" sandbox info
