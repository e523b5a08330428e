#!/usr/bin/env bash
# Regenerate the committed pocket results (experiments/results/) with one command:
#   bash experiments/run_pocket.sh
# The comparison sweep and the ablation sweep, then a report of each.
set -euo pipefail
cd "$(dirname "$0")/.."
out=experiments/results
python -m visurf.run -m experiment=pocket objective=sft,rlvr,sft_rlvr,visurf seed=0,1,2 \
    hydra.sweep.dir=$out/pocket
python -m visurf.run -m experiment=pocket objective=visurf reward_control=none,align,no_think,smooth,all seed=0,1,2 \
    hydra.sweep.dir=$out/ablation
python -m visurf.report $out/pocket
python -m visurf.report $out/ablation
