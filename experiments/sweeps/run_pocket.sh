#!/usr/bin/env bash
# Regenerate the committed pocket results (experiments/results/) with one command:
#   bash experiments/sweeps/run_pocket.sh [pocket] [ablation] [pocket_swapped] [extra Hydra overrides for every run]
# Runs the objective comparison (`pocket`), the reward-control ablation (`ablation`) and the
# objective comparison on the second concept split (`pocket_swapped`), all three when none is
# named (the Hydra multiruns of sweeps.sh's sweep_multiruns, into multirun/pocket-results/SWEEP,
# giving the committed run names), reports each, and copies the
# reports plus every run's summary.json, metrics.csv and config.yaml (not the weights) into
# experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/sweeps/sweeps.sh
python -c "import visurf, pandas" 2>/dev/null || {
    echo "run_pocket.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
sweeps=()
while [ $# -gt 0 ] && [[ "$1" != *=* ]]; do  # sweep names come first; Hydra overrides have a '='
    [ -n "$(sweep_experiment "$1")" ] || {
        echo "run_pocket.sh: no sweep named '$1' (${POCKET_SWEEPS[*]}; Hydra overrides are key=value)" >&2; exit 2; }
    sweeps+=("$1"); shift
done
[ ${#sweeps[@]} -gt 0 ] || sweeps=("${POCKET_SWEEPS[@]}")
for sweep in "${sweeps[@]}"; do
    while read -r -a multirun; do  # the sweep's multiruns (sweeps.sh), which give the committed run names
        python -m visurf.run -m "${multirun[@]}" hydra.sweep.dir=$POCKET_WORK/$sweep "$@" < /dev/null
    done < <(sweep_multiruns "$sweep")
done
bash experiments/sweeps/collect_results.sh "${sweeps[@]}"
