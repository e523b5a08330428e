"""Training accuracy by parts of a run, with each data group's share fixed to the evaluation split's.

    python experiments/probes/train_accuracy_thirds.py RUN_DIR [RUN_DIR ...] [--parts 3] [--out FILE.json]
    python experiments/probes/train_accuracy_thirds.py experiments/results/base_builds/*/1-0/s*

`train/accuracy` is the mean correctness of one step's rollouts (the injected label is not among
them) on that step's fresh prompts, whose mix of data groups (known, novel, non_object, multi)
varies from step to step. This reads a finished run's committed files only: `metrics.csv`
(`train/accuracy` and `train/group/<g>/accuracy`, NaN where a step had no prompt of the group)
and `summary.json` (the evaluation split's group sizes, `eval_before.groups.<g>.num_examples`,
and its greedy accuracy before and after).

Per part of the run (thirds by default: steps split as evenly as they go):
- `raw`: the mean of `train/accuracy` over the part's steps (± its standard error over steps);
- `groups`: per data group, the mean of its per-step accuracy over the steps that had it
  (steps count alike, whatever number of the group's prompts they drew) and that number of steps;
- `fixed_mix`: Σ_g share_g · groups[g], share_g the evaluation split's (± the error propagated
  from the groups' errors over steps).
If composition hid a rise, `fixed_mix` rises where `raw` does not. Over several runs it also
prints each part-to-part change pooled over runs, with a t-test over runs (the runs as the unit).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = ("known", "novel", "non_object", "multi")


def fail(message: str):
    print(f"train_accuracy_thirds.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def read_steps(run_dir: Path) -> pd.DataFrame:
    """The run's training steps (rows of metrics.csv with `train/accuracy`), in step order."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        fail(f"{run_dir} has no metrics.csv (a finished run's directory holds one)")
    frame = pd.read_csv(path)
    if "train/accuracy" not in frame:
        fail(f"{path} has no train/accuracy column (a run with a policy stage logs it)")
    steps = frame[frame["train/accuracy"].notna()].sort_values("step").reset_index(drop=True)
    if steps.empty:
        fail(f"{path} has no training step with train/accuracy")
    return steps


def eval_mix(run_dir: Path) -> dict[str, float]:
    """Each data group's share of the evaluation split (summary.json, `eval_before`)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        fail(f"{run_dir} has no summary.json (a finished run's directory holds one)")
    groups = (json.loads(path.read_text()).get("eval_before") or {}).get("groups") or {}
    sizes = {g: int(v["num_examples"]) for g, v in groups.items() if v.get("num_examples")}
    if not sizes:
        fail(f"{path} has no eval_before.groups with num_examples: the group mix is unknown")
    total = sum(sizes.values())
    return {g: n / total for g, n in sizes.items()}


def _mean_se(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna()
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return mean, se, n


def by_part(steps: pd.DataFrame, mix: dict[str, float], parts: int = 3) -> list[dict]:
    """Per part of the steps: `raw`, `groups` and `fixed_mix` (see the module docstring)."""
    out = []
    for rows in np.array_split(np.arange(len(steps)), parts):
        part = steps.iloc[rows]
        raw, raw_se, n = _mean_se(part["train/accuracy"])
        groups = {}
        for g in mix:
            column = f"train/group/{g}/accuracy"
            mean, se, k = _mean_se(part[column]) if column in part else (math.nan, math.nan, 0)
            groups[g] = {"accuracy": mean, "se": se, "steps": k}
        fixed = sum(mix[g] * groups[g]["accuracy"] for g in mix)
        fixed_se = math.sqrt(sum((mix[g] * groups[g]["se"]) ** 2 for g in mix))
        out.append(
            {
                "steps": [int(part["step"].iloc[0]), int(part["step"].iloc[-1])],
                "raw": raw,
                "raw_se": raw_se,
                "num_steps": n,
                "groups": groups,
                "fixed_mix": fixed,
                "fixed_mix_se": fixed_se,
            }
        )
    return out


def greedy_change(run_dir: Path) -> dict:
    """The run's greedy accuracy before and after on its evaluation split, overall and per group."""
    summary = json.loads((run_dir / "summary.json").read_text())
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    out = {"all": [before.get("accuracy"), after.get("accuracy")]}
    for g in GROUPS:
        b, a = (before.get("groups") or {}).get(g), (after.get("groups") or {}).get(g)
        if b and a:
            out[g] = [b["accuracy"], a["accuracy"]]
    return out


def pooled(runs: list[dict]) -> dict:
    """Last part minus first, per run and pooled over runs (mean, sd, t-test over runs)."""
    from scipy import stats

    def change(key_fn) -> dict:
        diffs = [key_fn(r["parts"][-1]) - key_fn(r["parts"][0]) for r in runs]
        diffs = [d for d in diffs if not math.isnan(d)]
        n = len(diffs)
        sd = float(np.std(diffs, ddof=1)) if n > 1 else math.nan
        p = float(stats.ttest_1samp(diffs, 0.0).pvalue) if n > 1 and sd > 0 else math.nan
        return {"mean": float(np.mean(diffs)) if n else math.nan, "sd": sd, "runs": n, "p": p}

    out = {"raw": change(lambda p: p["raw"]), "fixed_mix": change(lambda p: p["fixed_mix"])}
    for g in GROUPS:
        out[g] = change(lambda p, g=g: p["groups"].get(g, {}).get("accuracy", math.nan))
    return out


def _num(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3f}"


def print_run(name: str, result: dict) -> None:
    mix = ", ".join(f"{g} {s:.2f}" for g, s in result["mix"].items())
    print(f"\n{name}  (evaluation mix: {mix})")
    print(f"{'steps':>9} {'raw':>13} {'fixed mix':>13} " + " ".join(f"{g:>14}" for g in result["mix"]))
    for p in result["parts"]:
        groups = " ".join(
            f"{_num(p['groups'][g]['accuracy']):>9} ({p['groups'][g]['steps']:>2})" for g in result["mix"]
        )
        print(
            f"{p['steps'][0]:>4}-{p['steps'][1]:<4} {_num(p['raw'])} ±{_num(p['raw_se'])} "
            f"{_num(p['fixed_mix'])} ±{_num(p['fixed_mix_se'])} {groups}"
        )
    greedy = "; ".join(f"{g} {_num(b)} → {_num(a)}" for g, (b, a) in result["greedy"].items())
    print(f"  greedy, evaluation split: {greedy}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="experiments/probes/train_accuracy_thirds.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories")
    parser.add_argument("--parts", type=int, default=3, help="parts of the run (3: thirds)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.parts < 1:
        fail(f"--parts must be >= 1, got {args.parts}")
    runs = {}
    for run_dir in args.runs:
        steps, mix = read_steps(run_dir), eval_mix(run_dir)
        if len(steps) < args.parts:
            fail(f"{run_dir} has {len(steps)} training steps, fewer than --parts {args.parts}")
        runs[str(run_dir)] = result = {"mix": mix, "parts": by_part(steps, mix, args.parts)}
        result["greedy"] = greedy_change(run_dir)
        print_run(str(run_dir), result)
    out = {"parts": args.parts, "runs": runs}
    if len(runs) > 1 and args.parts > 1:
        out["last_minus_first"] = pooled(list(runs.values()))
        print(f"\nlast part minus first, over {len(runs)} runs (mean, sd over runs, t-test p):")
        for key, c in out["last_minus_first"].items():
            print(f"  {key:>10}: {c['mean']:+.3f}  sd {_num(c['sd'])}  p {c['p']:.2g}  ({c['runs']} runs)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
