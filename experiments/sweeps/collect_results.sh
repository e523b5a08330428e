#!/usr/bin/env bash
# Report the pocket sweeps and copy what the notebook and the report read into experiments/results/:
#   bash experiments/sweeps/collect_results.sh [pocket] [ablation] [pocket_swapped]   (no argument: all three)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/sweeps/sweeps.sh
python -c "import visurf, pandas" 2>/dev/null || {
    echo "collect_results.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
work=$POCKET_WORK
sweeps=("$@"); [ ${#sweeps[@]} -gt 0 ] || sweeps=("${POCKET_SWEEPS[@]}")
check_sweeps collect_results.sh "${sweeps[@]}"  # every name checked before anything is copied
for sweep in "${sweeps[@]}"; do
    [ -d "$work/$sweep" ] || { echo "collect_results.sh: $work/$sweep does not exist; run the sweep first (experiments/sweeps/run_pocket.sh)" >&2; exit 2; }
done
for sweep in "${sweeps[@]}"; do
    python -m visurf.report $work/$sweep
    dest=experiments/results/$sweep
    rm -rf "$dest"; mkdir -p "$dest"
    cp $work/$sweep/report.md $work/$sweep/report.csv $work/$sweep/*.png "$dest"/
    for run in $work/$sweep/*/; do
        [ -f "$run/summary.json" ] || continue
        name=$(basename "$run"); mkdir -p "$dest/$name"
        cp "$run/summary.json" "$run/metrics.csv" "$run/config.yaml" "$dest/$name"/
        # every question's outcome, so `python -m visurf.compare` works on the copies
        if compgen -G "$run/samples/outcomes_step*.json" > /dev/null; then
            mkdir -p "$dest/$name/samples"; cp "$run"/samples/outcomes_step*.json "$dest/$name/samples"/
        fi
    done
done
