#!/usr/bin/env bash
# Export every run folder given (a run, or a folder of runs such as runs/) in every format, as
# OUT/<folder name>/<format>/episodes.jsonl + README.md (the dataset card).
#   scripts/export_all.sh OUT RUN_FOLDER... [-- EXPORT_OPTIONS]
# EXPORT_OPTIONS go to every `mlsbench export` (e.g. -- --min-score 40 --redact-final).
# MLSBENCH names the command (default: mlsbench), e.g. MLSBENCH="python -m mlsbench_env.cli".
set -euo pipefail
mlsbench=(${MLSBENCH:-mlsbench})
formats=(chat-jsonl openai-tools sharegpt)

if (($# < 2)); then
    sed -n '2,6p' "$0" >&2
    exit 2
fi
out=$1
shift
folders=()
while (($#)) && [[ $1 != -- ]]; do
    folders+=("$1")
    shift
done
[[ ${1:-} == -- ]] && shift

for folder in "${folders[@]}"; do
    name=$(basename "$(realpath -m "$folder")")
    for format in "${formats[@]}"; do
        "${mlsbench[@]}" export "$folder" --format "$format" -o "$out/$name/$format" "$@"
    done
done
