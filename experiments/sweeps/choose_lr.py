"""Choose each objective's learning rate on the validation split, from a small grid.

    python experiments/sweeps/choose_lr.py                                   # the pocket grid
    python experiments/sweeps/choose_lr.py --objectives sft,rlvr --lrs 1e-5,1e-4 --jobs 2 -- trainer.max_steps=30

Every (objective, lr) pair is one run of `experiment=pocket` (or `--experiment`) that evaluates on
`data.test_split=val` — the synthetic world's validation split, drawn apart from the test split —
so the choice never sees a test question. Runs of different objectives go side by side (`--jobs`,
one thread each). The grid's results are written to `--out` as `lr_grid.md` / `lr_grid.json`, with every
run's summary, config and per-question outcomes under `runs/OBJECTIVE/RUN/`,
and the chosen rates are printed as the `pocket_lr` block the pocket preset records.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def grid_command(
    experiment: str, objective: str, lrs: list[str], seed: int, sweep_dir: Path, extra: list[str]
):
    return [
        sys.executable,
        "-m",
        "visurf.run",
        "-m",
        f"experiment={experiment}",
        f"objective={objective}",
        f"optim.lr={','.join(lrs)}",
        f"seed={seed}",
        "data.test_split=val",
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
    ]


def collect(sweep_dirs: dict[str, Path]) -> list[dict]:
    """One row per finished run: objective, lr, validation accuracy before and after."""
    import yaml

    rows = []
    for objective, sweep in sweep_dirs.items():
        for summary_path in sorted(sweep.glob("*/summary.json")):
            summary = json.loads(summary_path.read_text())
            cfg = yaml.safe_load((summary_path.parent / "config.yaml").read_text())
            if cfg["data"]["test_split"] != "val":
                raise ValueError(f"{summary_path.parent} did not evaluate on the validation split")
            after = summary.get("eval_after") or {}
            change = summary.get("change") or {}  # question by question against the start
            rows.append(
                {
                    "objective": objective,
                    "lr": float(cfg["optim"]["lr"]),
                    "val_before": summary["eval_before"]["accuracy"],
                    "val_after": after.get("accuracy"),
                    "format_rate": after.get("format_rate"),
                    "gained": change.get("gained"),
                    "lost": change.get("lost"),
                    "p_value": change.get("p_value"),
                    "run": summary_path.parent.name,
                }
            )
    return rows


def copy_outcomes(sweep_dirs: dict[str, Path], out: Path) -> None:
    """Every finished run's summary, config and per-question outcomes into OUT/runs/OBJECTIVE/RUN,
    so that each cell of the grid can be recomputed question by question (python -m visurf.compare)."""
    import shutil

    for objective, sweep in sweep_dirs.items():
        dest = out / "runs" / objective
        shutil.rmtree(dest, ignore_errors=True)  # this objective was re-run: its old copies go
        for summary_path in sorted(sweep.glob("*/summary.json")):
            run = summary_path.parent
            (dest / run.name / "samples").mkdir(parents=True)
            for name in ("summary.json", "config.yaml"):
                shutil.copy2(run / name, dest / run.name / name)
            for outcome in run.glob("samples/outcomes_step*.json"):
                shutil.copy2(outcome, dest / run.name / "samples" / outcome.name)


def kept_rows(previous: Path, objectives: list[str]) -> list[dict]:
    """The rows of an earlier lr_grid.json for objectives this call does not run, so that the
    grid can be filled in one objective at a time without losing what was measured."""
    if not previous.exists():
        return []
    return [r for r in json.loads(previous.read_text())["rows"] if r["objective"] not in objectives]


def choose(rows: list[dict]) -> dict[str, float]:
    """Per objective, the lr with the highest validation accuracy after training (ties: the smaller lr)."""
    best: dict[str, tuple[float, float]] = {}
    for row in rows:
        if row["val_after"] is None:
            continue
        key = (row["val_after"], -row["lr"])
        if row["objective"] not in best or key > best[row["objective"]][0:2]:
            best[row["objective"]] = (*key, row["lr"])
    return {objective: value[2] for objective, value in best.items()}


def grid_cell(row: dict) -> str:
    """`0.406 (141/53, p 2e-10)`: accuracy, then the paired change where the run recorded one."""
    cell = f"{row['val_after']:.3f}"
    if row.get("gained") is not None:
        cell += f" ({row['gained']}/{row['lost']}, p {row['p_value']:.1g})"
    return cell


def lr_text(lr: float, yaml: bool = False) -> str:
    """A learning rate as 1e-4 or 3e-5 (`:g` would print 0.0001); `yaml`: as 1.0e-4, which YAML
    reads as a number (it reads 1e-4 as a string)."""
    if math.isnan(lr) or lr == 0:  # no choice, or zero
        return f"{lr:g}"
    mantissa, exponent = f"{lr:e}".split("e")
    mantissa = f"{float(mantissa):.1f}" if yaml else f"{float(mantissa):g}"
    return f"{mantissa}e{int(exponent)}"


def to_markdown(rows: list[dict], chosen: dict[str, float]) -> str:
    lrs = sorted({r["lr"] for r in rows})
    lines = [
        "| objective | " + " | ".join(f"lr {lr_text(lr)}" for lr in lrs) + " | chosen |",
        "|---" * (len(lrs) + 2) + "|",
    ]
    for objective in dict.fromkeys(r["objective"] for r in rows):
        cells = []
        for lr in lrs:
            hit = [r for r in rows if r["objective"] == objective and r["lr"] == lr]
            cells.append(grid_cell(hit[0]) if hit and hit[0]["val_after"] is not None else "—")
        lines.append(
            f"| {objective} | " + " | ".join(cells) + f" | {lr_text(chosen.get(objective, float('nan')))} |"
        )
    before = {r["val_before"] for r in rows}
    note = (
        f"Validation accuracy after training (before: {', '.join(f'{b:.3f}' for b in sorted(before))}); "
        "in brackets the questions gained / lost against the start and McNemar's p."
    )
    return note + "\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="pocket")
    parser.add_argument("--objectives", default="sft,rlvr,sft_rlvr,visurf")
    parser.add_argument("--lrs", default="1e-5,2e-5,5e-5,1e-4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="objectives run side by side, one thread each")
    parser.add_argument("--work", type=Path, default=ROOT / "multirun" / "lr_grid")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "lr_grid")
    parser.add_argument("--collect-only", action="store_true", help="only read the runs already in --work")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)

    objectives = [o for o in args.objectives.split(",") if o]
    lrs = [lr for lr in args.lrs.split(",") if lr]
    for lr in lrs:
        float(lr)  # a bad rate fails here, before any run starts
    sweep_dirs = {o: args.work / o for o in objectives}
    if not args.collect_only:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}

        def run(objective: str) -> int:
            cmd = grid_command(
                args.experiment, objective, lrs, args.seed, sweep_dirs[objective], args.overrides
            )
            print("+ " + " ".join(cmd), flush=True)
            return subprocess.run(cmd, cwd=ROOT, env=env).returncode

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            failed = [o for o, rc in zip(objectives, pool.map(run, objectives)) if rc != 0]
        if failed:
            parser.exit(1, f"choose_lr: the grid runs of {failed} failed\n")

    rows = collect(sweep_dirs)
    if not rows:
        parser.exit(2, f"choose_lr: no finished run under {args.work}\n")
    rows = kept_rows(args.out / "lr_grid.json", objectives) + rows
    chosen = choose(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lr_grid.json").write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=2) + "\n")
    (args.out / "lr_grid.md").write_text(to_markdown(rows, chosen))
    copy_outcomes(sweep_dirs, args.out)
    print(to_markdown(rows, chosen))
    print("pocket_lr:\n" + "".join(f"  {o}: {lr_text(lr, yaml=True)}\n" for o, lr in chosen.items()))
    return chosen


if __name__ == "__main__":
    main()
