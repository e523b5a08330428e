"""How many test questions a paired comparison needs, from a run measured on the validation split.

    python experiments/probes/split_power.py BASE_EVAL RUN_EVAL [RUN_EVAL ...] [--sizes 500,1000] [--slice 500]

BASE_EVAL and each RUN_EVAL are `python -m visurf.eval ... split=val out=FILE` files on the same
validation questions (the base's, and one per seed of the run). For each run it prints the
questions gained and lost against the base, the same counts on consecutive slices of `--slice`
questions (what one test split of that size could have shown), and the power at each size: the
probability that a test split of that many questions shows the gain at McNemar p < 0.05, were
each question gained and lost at the rates measured here. The main job's test split is sized
with it (experiments/log/2026-12-05.md, "The main job's test split").
"""

from __future__ import annotations

import argparse
import math

from visurf.analysis.compare import load_outcomes, within
from visurf.evaluation.paired import mcnemar_p, mcnemar_power, paired_change


def counts(before: list, after: list) -> tuple[int, int]:
    change = paired_change(before, after)
    return change["gained"], change["lost"]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="experiments/probes/split_power.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("base")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--sizes", default="500,1000", help="test split sizes to give the power of")
    parser.add_argument("--slice", type=int, default=500, help="questions per slice (0: no slices)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes takes whole numbers separated by commas (e.g. 500,1000), got {args.sizes!r}")
    try:
        return report(load_outcomes(args.base), args.runs, sizes, args.slice)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))


def report(base: list, runs: list[str], sizes: list[int], width: int) -> list[dict]:
    """Print and return, per run, its gains and losses against `base`, by slice of `width`
    questions, and its power at each of `sizes` questions."""
    rows = []
    for run in runs:
        after = load_outcomes(run)
        gained, lost = counts(base, after)
        n = len(base)
        ranges = [range(lo, lo + width) for lo in range(0, n - width + 1, width)] if width > 0 else []
        slices = [counts(within(base, r, "the base"), within(after, r, run)) for r in ranges]
        power = {size: mcnemar_power(gained / n, lost / n, size) for size in sizes}
        rows.append(
            {"run": run, "gained": gained, "lost": lost, "questions": n, "slices": slices, "power": power}
        )
        print(f"{run}: {gained} / {lost} of {n} (p {mcnemar_p(gained, lost):.2g})")
        if slices:
            print(
                f"  slices of {width}: "
                + ", ".join(f"{up} / {down} (p {mcnemar_p(up, down):.2g})" for up, down in slices)
            )
        print("  power: " + ", ".join(f"{size} questions {p:.3f}" for size, p in power.items()))
    if len(rows) > 1:
        every = {size: math.prod(row["power"][size] for row in rows) for size in sizes}
        print("every run significant: " + ", ".join(f"{size} questions {p:.3f}" for size, p in every.items()))
    return rows


if __name__ == "__main__":
    main()
