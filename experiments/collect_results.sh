#!/usr/bin/env bash
# Report the two pocket sweeps and copy what the notebook and the report read into experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
work=multirun/pocket-results
for sweep in pocket ablation; do
    python -m visurf.report $work/$sweep
    dest=experiments/results/$sweep
    rm -rf "$dest"; mkdir -p "$dest"
    cp $work/$sweep/report.md $work/$sweep/report.csv $work/$sweep/*.png "$dest"/
    for run in $work/$sweep/*/; do
        [ -f "$run/summary.json" ] || continue
        name=$(basename "$run"); mkdir -p "$dest/$name"
        cp "$run/summary.json" "$run/metrics.csv" "$run/config.yaml" "$dest/$name"/
    done
done
