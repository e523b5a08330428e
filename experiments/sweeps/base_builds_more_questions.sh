#!/usr/bin/env bash
# The final models of experiments/sweeps/base_builds.sh's runs, and their bases, on more test questions:
#   BUILDS_CACHE=DIR bash experiments/sweeps/base_builds_more_questions.sh OUT NUM_TEST RUNS [SEEN]
# RUNS is laid out as base_builds.sh leaves OUT/runs: one folder per build (T-S: threads and base
# seed), holding its seed runs (sSEED, each with its model/). A build's base is the one cached in
# BUILDS_CACHE/cache-T-S. A synthetic test question depends on its index only, so with NUM_TEST
# above the SEEN questions the runs were evaluated on (default 1000, the main job's test split),
# questions SEEN to NUM_TEST - 1 are ones no run has been evaluated on. Every model is evaluated
# on the test split's first NUM_TEST questions (one thread each, two at a time), into
# OUT/answers/T-S/{base,sSEED}.json (every answer) and OUT/T-S/{base,sSEED}.json (outcomes only,
# small enough to commit); then experiments/sweeps/base_builds_more_questions.py prints each run
# against its base on the seen questions and on the new ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: BUILDS_CACHE=DIR bash experiments/sweeps/base_builds_more_questions.sh OUT NUM_TEST RUNS [SEEN]" >&2; exit 2; }
out=$1 num_test=$2 runs=$3 seen=${4:-1000}
caches=${BUILDS_CACHE:?set BUILDS_CACHE to the folder holding the builds cache-T-S}
[[ "$num_test" =~ ^[0-9]+$ ]] && [ "$num_test" -gt "$seen" ] || {
    echo "base_builds_more_questions.sh: NUM_TEST must be a whole number above SEEN ($seen), got '$num_test'" >&2; exit 2; }
[ -d "$runs" ] || { echo "base_builds_more_questions.sh: $runs is not a folder of builds" >&2; exit 2; }
jobs_=()
evaluate() {  # BUILD NAME overrides...: one evaluation in the background, two at a time
    local build=$1 name=$2; shift 2
    mkdir -p "$out/answers/$build" "$out/$build"
    [ -f "$out/$build/$name.json" ] && return 0  # done already
    (
        OMP_NUM_THREADS=1 VISURF_CACHE="$caches/cache-$build" python -m visurf.eval "$@" split=test \
            data.synth.num_test="$num_test" out="$out/answers/$build/$name.json" > "$out/answers/$build/$name.log" 2>&1 \
            || { echo "base_builds_more_questions.sh: $build $name failed; see $out/answers/$build/$name.log" >&2; exit 1; }
        python -c 'import json, sys; r = json.load(open(sys.argv[1])); r.pop("answers"); json.dump(r, open(sys.argv[2], "w"))' \
            "$out/answers/$build/$name.json" "$out/$build/$name.json"
    ) &
    jobs_+=($!)
    if [ ${#jobs_[@]} -ge 2 ]; then wait "${jobs_[0]}"; jobs_=("${jobs_[@]:1}"); fi
}
for folder in "$runs"/*/; do
    build=$(basename "$folder")
    [[ "$build" =~ ^[0-9]+-[0-9]+$ ]] || continue
    [ -d "$caches/cache-$build" ] || { echo "base_builds_more_questions.sh: no base cache $caches/cache-$build" >&2; exit 2; }
    evaluate "$build" base checkpoint=base model.base.seed="${build##*-}"
    for run in "$folder"s*/; do
        [ -f "$run/summary.json" ] || continue
        evaluate "$build" "$(basename "$run")" checkpoint="$run"
    done
done
for job in "${jobs_[@]}"; do wait "$job"; done
python experiments/sweeps/base_builds_more_questions.py "$out" --seen "$seen"
