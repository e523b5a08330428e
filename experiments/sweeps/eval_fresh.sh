#!/usr/bin/env bash
# Evaluate a pocket sweep's final models, and its base, on a larger test split:
#   bash experiments/sweeps/eval_fresh.sh pocket|ablation|pocket_swapped [NUM_TEST]        (default 2500)
# The sweep's runs were evaluated on the first 500 test questions while they trained; a test
# question depends on its index only, so questions 500 to NUM_TEST - 1 are ones no run has seen.
# Writes multirun/pocket-results/SWEEP/RUN/test_NUM_TEST.json (every answer) and a copy without
# the answers to experiments/results/fresh/SWEEP/RUN.json, and prints each model's accuracy on
# the new questions, overall and per data group; compare two models on them with
#   python -m visurf.compare --questions 500:NUM_TEST A.json B.json ...
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/sweeps/sweeps.sh
sweep=${1:?usage: eval_fresh.sh pocket|ablation|pocket_swapped [NUM_TEST]}
num_test=${2:-2500}
check_sweeps eval_fresh.sh "$sweep"
[[ "$num_test" =~ ^[0-9]+$ ]] && [ "$num_test" -gt 500 ] || {
    echo "eval_fresh.sh: NUM_TEST must be a whole number above the sweep's 500 test questions, got '$num_test'" >&2; exit 2; }
work=$POCKET_WORK/$sweep
[ -d "$work" ] || { echo "eval_fresh.sh: $work does not exist; run the sweep first (experiments/sweeps/run_pocket.sh)" >&2; exit 2; }
dest=experiments/results/fresh/$sweep
mkdir -p "$dest" "$work/base"
evaluate() {  # NAME CHECKPOINT [overrides...]
    local name=$1 out=$work/$1/test_$num_test.json; shift
    python -m visurf.eval "$@" data.synth.num_test="$num_test" out="$out" > "$work/$name/test_$num_test.log" 2>&1 \
        || { echo "eval_fresh.sh: evaluating $name failed; see $work/$name/test_$num_test.log" >&2; exit 1; }
    # The copy without the answers, and the accuracy on the new questions, overall and per group.
    python - "$out" "$dest/$name.json" "$name" <<'PY'
import json, sys, time
result = json.load(open(sys.argv[1]))
result.pop("answers")
json.dump(result, open(sys.argv[2], "w"))
fresh = [(group, correct) for index, group, correct in result["outcomes"] if index >= 500]
groups = sorted({group for group, _ in fresh})
mean = lambda rows: sum(c for _, c in rows) / len(rows)
by_group = ", ".join(f"{g} {mean([r for r in fresh if r[0] == g]):.3f}" for g in groups)
print(f"{time.strftime('%H:%M:%S')} {sys.argv[3]}: accuracy on questions 500 on {mean(fresh):.3f} ({by_group})")
PY
}
evaluate base checkpoint=base experiment="$(sweep_experiment "$sweep")"
for run in "$work"/*/; do
    [ -f "$run/summary.json" ] || continue
    evaluate "$(basename "$run")" checkpoint="$run"
done
