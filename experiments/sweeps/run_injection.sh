#!/usr/bin/env bash
# The pocket sweep over the label-injection presets (docs/injection.md) with one command:
#   bash experiments/sweeps/run_injection.sh [SEEDS] [extra Hydra overrides for every run]
# SEEDS is a Hydra list (default 0; e.g. 0,1,2). Every run is experiment=pocket objective=visurf
# reward_control=all, with injection=visurf|luffy|sgrpo|hpt, all in one sweep directory: the
# injection preset is part of each run's name and of the report's keys, so `python -m visurf.report`
# tells the presets apart and compares each with ViSurf's own. Two lanes side by side (two presets
# each, one thread per run). The report and every run's summary.json, metrics.csv, config.yaml and
# outcome files are copied to experiments/results/injection/.
set -euo pipefail
cd "$(dirname "$0")/../.."
python -c "import visurf, pandas" 2>/dev/null || {
    echo "run_injection.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
seeds=${1:-0}
shift || true
work=multirun/pocket-results/injection
export OMP_NUM_THREADS=1
lane() {
    python -m visurf.run -m experiment=pocket objective=visurf reward_control=all injection="$1" \
        seed="$seeds" hydra.sweep.dir=$work "${extra[@]}"
}
extra=("$@")
lane visurf,luffy & a=$!
lane sgrpo,hpt & b=$!
wait $a
wait $b

python -m visurf.report $work
dest=experiments/results/injection
rm -rf "$dest"; mkdir -p "$dest"
cp $work/report.md $work/report.csv "$dest"/
for run in $work/*/; do
    [ -f "$run/summary.json" ] || continue
    name=$(basename "$run"); mkdir -p "$dest/$name/samples"
    cp "$run/summary.json" "$run/metrics.csv" "$run/config.yaml" "$dest/$name"/
    cp "$run"/samples/outcomes_step*.json "$dest/$name/samples"/
done
