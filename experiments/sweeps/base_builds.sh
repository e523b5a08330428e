#!/usr/bin/env bash
# The main job (or any run) on several builds of the base model, seeds side by side:
#   bash experiments/sweeps/base_builds.sh OUT "BUILDS" "SEEDS" [Hydra overrides for every run]
# BUILDS lists THREADS:BASE_SEED pairs, e.g. "1:0 2:0 1:1": each build's base is trained with
# OMP_NUM_THREADS=THREADS and model.base.seed=BASE_SEED, in a cache of its own (OUT/cache-T-S:
# the thread count is not part of the cache key, so builds that differ only in it are kept
# apart; BUILDS_CACHE=DIR keeps the caches there instead, so several recipes share their bases).
# Bases build side by side while their thread counts fit the machine's cores (a build's thread
# count changes its numbers, not who runs beside it; two 2-thread builds on 2 cores ran 7x slower
# together than one after the other).
# SEEDS lists post-training seeds, e.g. "0 1". Every (build, seed) run goes to
# OUT/runs/T-S/sSEED, two at a time, one thread each; then experiments/sweeps/base_builds.py prints the
# table of gains and losses per run, summed and at the level of runs.
#   bash experiments/sweeps/base_builds.sh /tmp/builds "1:0 2:0 1:1" "0 1" data.test_split=val
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: bash experiments/sweeps/base_builds.sh OUT \"T:S ...\" \"SEED ...\" [overrides]" >&2; exit 2; }
out=$1 builds=$2 seeds=$3
shift 3
caches=${BUILDS_CACHE:-$out}
mkdir -p "$out/runs"
# BUILDS_CORES overrides the cores counted (nproc, which an exported OMP_NUM_THREADS would lower).
cores=${BUILDS_CORES:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
jobs_=() threads_=()
for build in $builds; do  # the bases first, each once with its own thread count
    threads=${build%%:*} base_seed=${build##*:}
    while [ ${#jobs_[@]} -gt 0 ]; do  # wait for the oldest build until this one's threads fit
        busy=$threads
        for t in "${threads_[@]}"; do busy=$((busy + t)); done
        [ "$busy" -le "$cores" ] && break
        wait "${jobs_[0]}"; jobs_=("${jobs_[@]:1}"); threads_=("${threads_[@]:1}")
    done
    VISURF_CACHE="$caches/cache-$threads-$base_seed" OMP_NUM_THREADS=$threads \
        python -m visurf.recipes.base_model model.base.seed="$base_seed" "$@" > "$out/base-$threads-$base_seed.log" 2>&1 &
    jobs_+=($!) threads_+=("$threads")
done
for job in "${jobs_[@]}"; do wait "$job"; done
jobs_=()
for build in $builds; do
    threads=${build%%:*} base_seed=${build##*:}
    for seed in $seeds; do
        run="$out/runs/$threads-$base_seed/s$seed"
        [ -f "$run/summary.json" ] && continue  # done already: a rerun fills in only what is missing
        VISURF_CACHE="$caches/cache-$threads-$base_seed" OMP_NUM_THREADS=1 \
            python -m visurf.run model.base.seed="$base_seed" seed="$seed" hydra.run.dir="$run" "$@" \
            > "$out/runs/$threads-$base_seed-s$seed.log" 2>&1 &
        jobs_+=($!)
        if [ ${#jobs_[@]} -ge 2 ]; then wait "${jobs_[0]}"; jobs_=("${jobs_[@]:1}"); fi
    done
done
wait
python experiments/sweeps/base_builds.py "$out/runs"
