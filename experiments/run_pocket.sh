#!/usr/bin/env bash
# Regenerate the committed pocket results (experiments/results/) with one command:
#   bash experiments/run_pocket.sh [pocket] [ablation] [extra Hydra overrides for every run]
# Runs the objective comparison (`pocket`) and the reward-control ablation (`ablation`), both when
# neither is named (Hydra multiruns, into multirun/pocket-results/), reports each, and copies the
# reports plus every run's summary.json, metrics.csv and config.yaml (not the weights) into
# experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import visurf, pandas" 2>/dev/null || {
    echo "run_pocket.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
sweeps=()
while [ $# -gt 0 ] && [[ "$1" != *=* ]]; do  # sweep names come first; Hydra overrides have a '='
    case "$1" in
        pocket | ablation) sweeps+=("$1"); shift ;;
        *) echo "run_pocket.sh: no sweep named '$1' (pocket or ablation; Hydra overrides are key=value)" >&2; exit 2 ;;
    esac
done
[ ${#sweeps[@]} -gt 0 ] || sweeps=(pocket ablation)
work=multirun/pocket-results
for sweep in "${sweeps[@]}"; do
    if [ "$sweep" = pocket ]; then
        python -m visurf.run -m experiment=pocket objective=sft,rlvr,sft_rlvr,visurf seed=0,1,2 \
            hydra.sweep.dir=$work/pocket "$@"
    else
        python -m visurf.run -m experiment=pocket objective=visurf reward_control=none,align,no_think,smooth,all seed=0,1,2 \
            hydra.sweep.dir=$work/ablation "$@"
    fi
done
bash experiments/collect_results.sh "${sweeps[@]}"
