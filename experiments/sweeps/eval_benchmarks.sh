#!/usr/bin/env bash
# Evaluate a model on every evaluation set of the authors' that is here, by the released protocol
# (docs/evaluation.md), and write a table like the paper's: a row per benchmark, a column per metric.
#   bash experiments/sweeps/eval_benchmarks.sh CHECKPOINT [key=value ...]
# CHECKPOINT is visurf.eval's checkpoint= (a run, a .ckpt file, a model directory, or base); every
# key=value goes to each visurf.eval, e.g. a released checkpoint with SAM2 masks:
#   bash experiments/sweeps/eval_benchmarks.sh /models/Visurf-7B model=qwen2_5_vl_7b \
#       eval.segmenter.path=/models/sam2-hiera-large
# Which sets: BENCHMARKS (space-separated hub ids or folders), by default the authors' hub ids
# (visurf.analysis.benchmarks.BENCHMARKS); a hub id counts when the local HF cache ($HF_HUB_CACHE)
# has it, a folder when it exists; nothing is downloaded. Results: OUT (default
# experiments/results/benchmarks/<checkpoint's name>)/NAME.json (every sample's answer and scores)
# and NAME.log, then table.md and table.csv there; the table is printed too.
set -euo pipefail
cd "$(dirname "$0")/../.."
checkpoint=${1:?usage: eval_benchmarks.sh CHECKPOINT [key=value ...]}
shift
out=${OUT:-experiments/results/benchmarks/$(basename "${checkpoint%/}")}
# shellcheck disable=SC2086  # BENCHMARKS is a list
present=$(python -m visurf.analysis.benchmarks present ${BENCHMARKS:-})
wanted=${BENCHMARKS:-"the hub ids in visurf.analysis.benchmarks.BENCHMARKS"}
[ -n "$present" ] || { echo "eval_benchmarks.sh: none of the evaluation sets is here ($wanted); fetch one with huggingface-cli download --repo-type dataset Ricky06662/ReasonSeg_val" >&2; exit 2; }
mkdir -p "$out"
while read -r kind where; do
    name=$(basename "$where")
    if [ "$kind" = hub ]; then data=(data=hub "data.hub_id=$where"); else data=(data=local "data.path=$where"); fi
    echo "$(date +%H:%M:%S) $name"
    python -m visurf.eval checkpoint="$checkpoint" "${data[@]}" split=test out="$out/$name.json" "$@" \
        > "$out/$name.log" 2>&1 || { echo "eval_benchmarks.sh: evaluating on $name failed; see $out/$name.log" >&2; exit 1; }
done <<< "$present"
python -m visurf.analysis.benchmarks table "$out"
