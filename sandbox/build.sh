#!/usr/bin/env bash
# Build the sandbox images (base + packages) if their recipe changed: `mlsbench images build`.
set -euo pipefail
exec mlsbench images build "$@"
