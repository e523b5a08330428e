"""A run's learning curves as text: windowed means of its per-step metrics, then its evaluations.

    python experiments/sweeps/curves.py RUN_DIR [RUN_DIR ...] [--window 10] [--metrics reward,accuracy,...]

Reads each run's metrics.csv (the `train/` prefix is implied). Use it to read a run while it
trains, or to compare a few controlled runs side by side without a notebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

DEFAULT = "reward,accuracy,empty_answer_rate,reward/accuracy,spread_share/accuracy,groups/zero_spread,entropy,completion_length,grad_norm"


def windowed(metrics: pd.DataFrame, columns: list[str], window: int) -> pd.DataFrame:
    """Mean of each `train/<column>` over consecutive windows of `window` logged steps."""
    present = [c for c in columns if f"train/{c}" in metrics]
    rows = metrics.dropna(subset=[f"train/{present[0]}"]) if present else metrics.iloc[:0]
    rows = rows[["step", *(f"train/{c}" for c in present)]].reset_index(drop=True)
    rows.columns = ["step", *present]
    block = rows.index // window
    out = rows.groupby(block).mean()
    out["step"] = rows.groupby(block)["step"].min()
    return out


def evaluations(metrics: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in ("eval/accuracy", "eval/mean_reward", "eval/format_rate") if c in metrics]
    return metrics.dropna(subset=cols[:1])[["step", *cols]] if cols else metrics.iloc[:0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--metrics", default=DEFAULT)
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200, "display.max_columns", 30, "display.precision", 3)
    for run in args.runs:
        path = run / "metrics.csv"
        if not path.is_file():
            parser.exit(2, f"curves: {path} does not exist\n")
        metrics = pd.read_csv(path)
        print(f"== {run}")
        print(windowed(metrics, args.metrics.split(","), args.window).to_string(index=False))
        print(evaluations(metrics).to_string(index=False))


if __name__ == "__main__":
    main()
