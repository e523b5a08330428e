#!/usr/bin/env bash
# Regenerate the committed pocket results (experiments/results/) with one command:
#   bash experiments/run_pocket.sh [extra Hydra overrides for every run]
# Runs the objective comparison and the reward-control ablation (Hydra multiruns, into
# multirun/pocket-results/), reports each, and copies the reports plus every run's
# summary.json, metrics.csv and config.yaml (not the weights) into experiments/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import visurf, pandas" 2>/dev/null || {
    echo "run_pocket.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
work=multirun/pocket-results
python -m visurf.run -m experiment=pocket objective=sft,rlvr,sft_rlvr,visurf seed=0,1,2 \
    hydra.sweep.dir=$work/pocket "$@"
python -m visurf.run -m experiment=pocket objective=visurf reward_control=none,align,no_think,smooth,all seed=0,1,2 \
    hydra.sweep.dir=$work/ablation "$@"
bash experiments/collect_results.sh
