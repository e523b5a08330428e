#!/usr/bin/env bash
# Evaluate a pocket sweep's final models, and its base, on a larger test split:
#   bash experiments/eval_fresh.sh pocket|ablation|pocket_swapped [NUM_TEST]        (default 2500)
# The sweep's runs were evaluated on the first 500 test questions while they trained; a test
# question depends on its index only, so questions 500 to NUM_TEST - 1 are ones no run has seen.
# Writes multirun/pocket-results/SWEEP/RUN/test_NUM_TEST.json (every answer) and a copy without
# the answers to experiments/results/fresh/SWEEP/RUN.json; compare on the new questions with
#   python -m visurf.compare --questions 500:NUM_TEST A.json B.json ...
set -euo pipefail
cd "$(dirname "$0")/.."
source experiments/sweeps.sh
sweep=${1:?usage: eval_fresh.sh pocket|ablation|pocket_swapped [NUM_TEST]}
num_test=${2:-2500}
check_sweeps eval_fresh.sh "$sweep"
[[ "$num_test" =~ ^[0-9]+$ ]] && [ "$num_test" -gt 500 ] || {
    echo "eval_fresh.sh: NUM_TEST must be a whole number above the sweep's 500 test questions, got '$num_test'" >&2; exit 2; }
work=$POCKET_WORK/$sweep
[ -d "$work" ] || { echo "eval_fresh.sh: $work does not exist; run the sweep first (experiments/run_pocket.sh)" >&2; exit 2; }
dest=experiments/results/fresh/$sweep
mkdir -p "$dest" "$work/base"
evaluate() {  # NAME CHECKPOINT [overrides...]
    local name=$1 out=$work/$1/test_$num_test.json; shift
    python -m visurf.eval "$@" data.synth.num_test="$num_test" out="$out" > "$work/$name/test_$num_test.log" 2>&1 \
        || { echo "eval_fresh.sh: evaluating $name failed; see $work/$name/test_$num_test.log" >&2; exit 1; }
    python - "$out" "$dest/$name.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
result.pop("answers")
json.dump(result, open(sys.argv[2], "w"))
PY
    echo "$(date +%T) $name: accuracy $(python -c "import json,sys; print(json.load(open(sys.argv[1]))['accuracy'])" "$out")"
}
evaluate base checkpoint=base experiment="$(sweep_experiment "$sweep")"
for run in "$work"/*/; do
    [ -f "$run/summary.json" ] || continue
    evaluate "$(basename "$run")" checkpoint="$run"
done
