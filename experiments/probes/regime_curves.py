"""Where the labels should matter: each run's accuracy per data group at every evaluation (and how
many answers changed since the evaluation before), and per window of training steps the share
of its groups whose rollouts found no right answer and the share the label entered, per data group.

    python experiments/probes/regime_curves.py RUN_DIR [RUN_DIR ...] [--window 120] [--out FILE.md]

Reads a finished run's committed files only: `samples/outcomes_step*.json` (one
[index, group, correct] per evaluated question) and `metrics.csv` (`train/group/<g>/none_correct`
and `train/group/<g>/label_entered`, NaN where a step had no prompt of the group). The regime the
issue asks for shows as novel accuracy rising under SFT, and under RLVR staying near the start
while most novel groups find no right answer. Last, each objective's training windows averaged
over its runs (its seeds, from multirun folders `N_OBJECTIVE_sSEED`): the figures a summary over
seeds quotes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from visurf.analysis.compare import evaluations
from visurf.evaluation.paired import paired_change
from visurf.runs.naming import parse_job_folder

GROUPS = ("known", "novel", "non_object", "multi")


def eval_curve(run: Path) -> pd.DataFrame:
    """One row per evaluation step: its questions, the accuracy of each data group present, and
    `changed`: how many answers went from wrong to right or right to wrong since the evaluation
    before (empty for the first, or where the two evaluated different questions)."""
    rows, previous = [], None
    for step, path in evaluations(run).items():
        raw = json.loads(path.read_text())
        outcomes = pd.DataFrame(raw, columns=["index", "group", "correct"])
        row = {"step": step, "questions": len(outcomes), "all": outcomes.correct.mean()}
        row.update(outcomes.groupby("group").correct.mean().to_dict())
        row["changed"] = changed_answers(previous, raw)
        rows.append(row)
        previous = raw
    if not rows:
        raise FileNotFoundError(f"{run}: no samples/outcomes_step*.json (was the run evaluated?)")
    return pd.DataFrame(rows).set_index("step")


def changed_answers(before: list | None, after: list) -> float:
    """Questions gained plus lost between two evaluations (NaN without a comparable one before)."""
    if before is None:
        return math.nan
    try:
        change = paired_change([tuple(o) for o in before], [tuple(o) for o in after])
    except ValueError:  # not the same questions
        return math.nan
    return change["gained"] + change["lost"]


def train_windows(run: Path, window: int) -> pd.DataFrame:
    """Per window of `window` steps and data group: mean none-correct share and label-entered share."""
    metrics = pd.read_csv(run / "metrics.csv")
    train = metrics[metrics["train/loss"].notna()] if "train/loss" in metrics else metrics
    if "step" not in train or train.empty:
        raise ValueError(f"{run}/metrics.csv has no training rows")
    window_of = (train["step"] // window) * window
    columns = {}
    for group in GROUPS:
        for stat in ("none_correct", "label_entered"):
            name = f"train/group/{group}/{stat}"
            if name in train:
                columns[f"{group} {stat}"] = train[name].groupby(window_of).mean()
    return pd.DataFrame(columns).dropna(axis=1, how="all")  # groups the run never met


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value) -> str:
    return "" if missing(value) else f"{value:.3f}"


def count(value) -> str:
    return "" if missing(value) else str(int(value))


def markdown(frame: pd.DataFrame, index_name: str) -> str:
    head = [index_name, *frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for index, row in frame.iterrows():
        cells = [
            str(int(index)),
            *(count(v) if c in ("questions", "changed") else fmt(v) for c, v in row.items()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def objective_of(run: Path) -> str:
    """The objective part of a multirun's folder name (`3_visurf_all_s3` -> `visurf_all`)."""
    parsed = parse_job_folder(run.name)
    return parsed[0] if parsed else run.name


def mean_windows(windows_of: dict[Path, pd.DataFrame]) -> dict[str, tuple[int, pd.DataFrame]]:
    """Per objective with rollouts: (its number of runs, its training windows averaged over them),
    from each run's `train_windows`."""
    by_objective: dict[str, list[pd.DataFrame]] = {}
    for run, windows in windows_of.items():
        if not windows.empty:
            by_objective.setdefault(objective_of(run), []).append(windows)
    return {
        name: (len(frames), pd.concat(frames).groupby(level=0).mean())
        for name, frames in by_objective.items()
    }


def report(runs: list[Path], window: int) -> str:
    parts, windows_of = [], {}
    for run in runs:
        parts.append(
            f"### {run.name}\n\nEvaluation accuracy by data group:\n\n{markdown(eval_curve(run), 'step')}"
        )
        windows = windows_of[run] = train_windows(run, window)
        if windows.empty:
            parts.append("Training: no per-group rollout statistics (an SFT run has no rollouts).")
        else:
            parts.append(f"Training, mean per window of {window} steps:\n\n{markdown(windows, 'from step')}")
    for name, (count, windows) in mean_windows(windows_of).items():
        parts.append(
            f"### {name}: mean over its {count} runs\n\nTraining, mean per window of {window} steps:"
            f"\n\n{markdown(windows, 'from step')}"
        )
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--window", type=int, default=120, help="training steps per window (default 120)")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window must be at least 1, got {args.window}")
    text = report(args.runs, args.window)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
