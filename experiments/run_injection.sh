#!/usr/bin/env bash
# The pocket sweep over the label-injection presets (docs/injection.md) with one command:
#   bash experiments/run_injection.sh [SEEDS] [extra Hydra overrides for every run]
# SEEDS is a Hydra list (default 0; e.g. 0,1,2). Every run is experiment=pocket objective=visurf
# reward_control=all, with injection=visurf|luffy|sgrpo|hpt: two presets one after the other in each
# of two chains run side by side, one thread per run. Each preset is its own multirun (under
# multirun/pocket-results/injection/PRESET) because visurf.report groups runs by (objective,
# reward_control), which the presets share. The reports, a table of the four, and every run's
# summary.json, metrics.csv, config.yaml and outcome files are copied to experiments/results/injection/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import visurf, pandas" 2>/dev/null || {
    echo "run_injection.sh: the 'python' on PATH cannot import visurf and pandas; activate the project's venv first (README, Quickstart)" >&2
    exit 1
}
seeds=${1:-0}
shift || true
work=multirun/pocket-results/injection
export OMP_NUM_THREADS=1
chain() {
    for preset in "$@"; do
        python -m visurf.run -m experiment=pocket objective=visurf reward_control=all injection=$preset \
            seed=$seeds hydra.sweep.dir=$work/$preset "${extra[@]}"
    done
}
extra=("$@")
chain visurf luffy & a=$!
chain sgrpo hpt & b=$!
wait $a
wait $b

dest=experiments/results/injection
rm -rf "$dest"; mkdir -p "$dest"
for preset in visurf luffy sgrpo hpt; do
    python -m visurf.report $work/$preset
    mkdir -p "$dest/$preset"
    cp $work/$preset/report.md $work/$preset/report.csv "$dest/$preset"/
    for run in $work/$preset/*/; do
        [ -f "$run/summary.json" ] || continue
        name=$(basename "$run"); mkdir -p "$dest/$preset/$name/samples"
        cp "$run/summary.json" "$run/metrics.csv" "$run/config.yaml" "$dest/$preset/$name"/
        cp "$run"/samples/outcomes_step*.json "$dest/$preset/$name/samples"/
    done
done
python - "$dest" <<'PY'
# One table of the four presets: each report.csv's single row, labelled by its preset.
import sys
from pathlib import Path

import pandas as pd

dest = Path(sys.argv[1])
rows = []
for preset in ("visurf", "luffy", "sgrpo", "hpt"):
    row = pd.read_csv(dest / preset / "report.csv").iloc[0]
    rows.append({"injection": preset, **row.to_dict()})
table = pd.DataFrame(rows)
table.to_csv(dest / "presets.csv", index=False)
columns = ["injection", "n_seeds", "accuracy_mean", "accuracy_std", "known_mean", "novel_mean",
           "before_accuracy_mean", "gained_mean", "lost_mean", "max_grad_norm", "wall_time_s"]
columns = [c for c in columns if c in table]
lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
for _, r in table[columns].iterrows():
    cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r]
    lines.append("| " + " | ".join(cells) + " |")
(dest / "presets.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
