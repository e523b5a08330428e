"""The table of `experiments/sweeps/base_builds_more_questions.sh`: each run against its base on the
test questions it was evaluated on and on new ones, and how often the two verdicts agree.

    python experiments/sweeps/base_builds_more_questions.py OUT [OUT2 ...] [--seen 1000] [--new 3000:6000]

Each OUT holds one folder per build (T-S) with `base.json` and `sSEED.json`, `python -m visurf.eval`
results (outcomes only suffice) of the same test questions. Questions 0 to SEEN - 1 are the ones
the runs were evaluated on; the rest are new (`--new START:END`: only those). Per range: each run's gains and losses against its
base (McNemar p), their sum, the test at the level of runs, and the runs that gain; then how many
runs gain on one range and not on the other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visurf.analysis.compare import compare_runs, load_outcomes, question_range
from visurf.evaluation.paired import mcnemar_p, seed_level, summed_change


def pairs(roots: list[Path]) -> list[tuple[str, str, Path, Path]]:
    """(build, run name, base file, run file) for every run under the roots."""
    found = []
    for root in roots:
        for base in sorted(root.glob("*/base.json")):
            for run in sorted(base.parent.glob("s*.json")):
                found.append((base.parent.name, run.stem, base, run))
    if not found:
        raise SystemExit(
            f"base_builds_more_questions.py: no */base.json with */s*.json under {', '.join(map(str, roots))}"
        )
    return found


def ranges(found: list, seen: int, new: range | None = None) -> dict[str, range]:
    total = min(len(load_outcomes(path)) for _, _, base, run in found for path in (base, run))
    new = new or range(seen, total)
    if new.start < seen or new.stop > total or not len(new):
        raise SystemExit(
            f"base_builds_more_questions.py: the evaluations have {total} questions: none in "
            f"{new.start}:{new.stop} past --seen {seen}"
        )
    return {f"seen (0-{seen - 1})": range(0, seen), f"new ({new.start}-{new.stop - 1})": new}


def summary(changes: list[dict]) -> str:
    summed, level = summed_change(changes), seed_level(changes)
    gaining = sum(c["gained"] > c["lost"] for c in changes)
    text = (
        f"summed {summed['gained']} / {summed['lost']} (McNemar p {mcnemar_p(summed['gained'], summed['lost']):.2g}); "
        f"runs that gain {gaining} of {len(changes)}; over runs {100 * level['mean']:+.2f} points"
    )
    if level["t_p_value"] is not None:
        text += f" (sd {100 * level['sd']:.2f}, t-test p {level['t_p_value']:.2g})"
    return text


def table(found: list, seen: int, new: range | None = None) -> tuple[str, dict]:
    spans = ranges(found, seen, new)
    changes = {
        name: [compare_runs(base, run, questions=span) for _, _, base, run in found]
        for name, span in spans.items()
    }
    names = list(spans)
    lines = [
        "| build | run | " + " | ".join(f"{n}: gained / lost (p)" for n in names) + " |",
        "| --- | --- |" + " --- |" * len(names),
    ]
    for i, (build, run, _, _) in enumerate(found):
        cells = [
            f"{changes[n][i]['gained']} / {changes[n][i]['lost']} ({changes[n][i]['p_value']:.2g})"
            for n in names
        ]
        lines.append(f"| {build} | {run} | " + " | ".join(cells) + " |")
    lines.append("")
    for n in names:
        lines.append(f"{n}: {summary(changes[n])}.")
    verdicts = [[c["gained"] > c["lost"] for c in changes[n]] for n in names]
    agree = sum(a == b for a, b in zip(*verdicts))
    lines.append(f"Runs whose verdict (gained > lost) is the same on both ranges: {agree} of {len(found)}.")
    return "\n".join(lines) + "\n", changes


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="OUT of base_builds_more_questions.sh")
    parser.add_argument(
        "--seen", type=int, default=1000, help="questions the runs were evaluated on (default 1000)"
    )
    parser.add_argument(
        "--new",
        type=question_range,
        default=None,
        metavar="START:END",
        help="the new questions (default: SEEN on)",
    )
    args = parser.parse_args(argv)
    text, _ = table(pairs(args.roots), args.seen, args.new)
    print(text)
    return text


if __name__ == "__main__":
    main()
