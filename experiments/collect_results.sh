#!/usr/bin/env bash
# Report the two pocket sweeps and copy what the notebook and the report read into experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import visurf, pandas" 2>/dev/null || {
    echo "collect_results.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
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
        # every question's outcome, so `python -m visurf.compare` works on the copies
        if compgen -G "$run/samples/outcomes_step*.json" > /dev/null; then
            mkdir -p "$dest/$name/samples"; cp "$run"/samples/outcomes_step*.json "$dest/$name/samples"/
        fi
    done
done
