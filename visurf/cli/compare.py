"""`python -m visurf.compare RUN_A RUN_B [A2 B2 ...]`: runs compared question by question.

Each evaluation writes `samples/outcomes_stepN.json`, whether every test question was answered
right; B's gains and losses against A, per group, with McNemar's exact p-value
(`visurf.analysis.compare`). Each run's last evaluation is used unless `--step` names another.
A or B may also be the `out=` file of `python -m visurf.eval`; with two such files `--show N`
prints N questions B lost and N it gained (`--group` picks a data group), each with the label
and both answers. Several pairs (one per seed, say) are also summed: gains and losses added over
the pairs, with one p-value, and tested at the level of the pairs (one per seed: the mean of their
accuracy differences, a t-test over them and a bootstrap interval), which is what a claim about
the method needs. `--questions 500:2500` compares only the questions of those indices.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from visurf.analysis.compare import changed_answers, compare_runs, question_range
from visurf.evaluation.paired import seed_level, summed_change


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m visurf.compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs",
        type=Path,
        nargs="+",
        metavar="RUN_A RUN_B",
        help="runs (or eval JSON files) in pairs: B's gains and losses against A; "
        "several pairs (e.g. one per seed) are also summed",
    )
    parser.add_argument("--step", type=int, default=None, help="evaluation step (default: each run's last)")
    parser.add_argument("--out", type=Path, default=None, help="also write the comparison as JSON")
    parser.add_argument(
        "--show",
        type=int,
        default=0,
        metavar="N",
        help="print N lost and N gained questions with both answers",
    )
    parser.add_argument("--group", default=None, help="with --show: only questions of this data group")
    parser.add_argument(
        "--questions",
        type=question_range,
        default=None,
        metavar="START:END",
        help="compare only the questions with these indices (END excluded)",
    )
    args = parser.parse_args(argv)
    if len(args.runs) % 2:
        parser.error(
            f"runs come in pairs (RUN_A RUN_B ...); got {len(args.runs)}: {[str(r) for r in args.runs]}"
        )
    pairs = list(zip(args.runs[::2], args.runs[1::2]))
    try:
        changes = [compare_runs(a, b, args.step, args.questions) for a, b in pairs]
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    for (a, b), change in zip(pairs, changes):
        print_change(f"{b} against {a}", change)
        if args.show:
            try:
                print_answers(changed_answers(a, b, args.group, args.show, args.questions))
            except ValueError as err:
                parser.error(str(err))
    if len(pairs) == 1:
        result = changes[0]
    else:
        result = {
            "pairs": [[str(a), str(b)] for a, b in pairs],
            "changes": changes,
            "summed": summed_change(changes),
            "seed_level": seed_level(changes),
        }
        print_change(f"summed over the {len(pairs)} pairs", result["summed"])
        print_seed_level(result["seed_level"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


def print_change(title: str, change: dict) -> None:
    print(f"{title}:")
    print(
        f"  gained {change['gained']}, lost {change['lost']}, unchanged {change['unchanged']}, "
        f"p = {change['p_value']:.3g}"
    )
    for group, counts in change["groups"].items():
        print(f"  {group}: gained {counts['gained']}, lost {counts['lost']}, unchanged {counts['unchanged']}")


def print_seed_level(level: dict) -> None:
    """One line: the pairs as seeds, their accuracy differences and a test over them."""
    diffs = ", ".join(f"{100 * d:+.1f}" for d in level["differences"])
    p = "—" if level["t_p_value"] is None else f"{level['t_p_value']:.3g}"
    low, high = (100 * v for v in level["ci"])
    print(
        f"seed level: B - A by pair {diffs} points; mean {100 * level['mean']:+.2f} "
        f"(sd {100 * level['sd']:.2f}), t-test over {level['seeds']} pairs p = {p}, "
        f"95% bootstrap interval [{low:+.2f}, {high:+.2f}]"
    )


def print_answers(shown: dict[str, list[dict]]) -> None:
    for kind, questions in shown.items():
        for q in questions:
            print(f"  {kind} #{q['index']} ({q['group']}): {q['problem']}")
            print(f"    label: {q['label']}")
            print(f"    A: {q['a']}")
            print(f"    B: {q['b']}")


if __name__ == "__main__":
    main()
