"""The table of `experiments/sweeps/base_builds.sh`: every (build, seed) run's gains and losses against
its own start, their sum (McNemar) and a test at the level of runs.

    python experiments/sweeps/base_builds.py OUT/runs [--out table.md]
    python experiments/sweeps/base_builds.py OUT/runs OTHER/runs/1-1 [...]   # one table over several

Each ROOT is a sweep's `OUT/runs` (one folder per build) or a single build's folder; a (build,
seed) found twice is refused.

Each run's summary.json holds `change`: its final evaluation against its evaluation before
training, question by question. Summed over runs, McNemar's p tests these trained models; the
seed-level test (visurf.evaluation.paired.seed_level: the runs' accuracy differences, a t-test
over them and a bootstrap interval) asks whether the recipe gains on a build and seed drawn
afresh.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from visurf.evaluation.paired import mcnemar_p, seed_level, summed_change


def run_summaries(root: Path) -> list[Path]:
    """The summary.json of every run under a sweep's OUT/runs, or under one build's folder."""
    own = sorted(root.glob("s*/summary.json"))
    return own if own else sorted(root.glob("*/s*/summary.json"))


def collect(roots: list[Path]) -> list[dict]:
    rows, seen = [], {}
    for summary in (s for root in roots for s in run_summaries(root)):
        data = json.loads(summary.read_text())
        change = data.get("change")
        if change is None:
            continue
        build = summary.parent.parent.name
        if (build, data["seed"]) in seen:
            raise SystemExit(
                f"base_builds.py: build {build} seed {data['seed']} twice: "
                f"{seen[build, data['seed']]} and {summary.parent}"
            )
        seen[build, data["seed"]] = summary.parent
        rows.append(
            {
                "build": build,
                "seed": data["seed"],
                "before": data["eval_before"]["accuracy"],
                "after": data["eval_after"]["accuracy"],
                "empty_before": (data["eval_before"].get("groups", {}).get("non_object") or {}).get(
                    "accuracy"
                ),
                "empty_after": (data["eval_after"].get("groups", {}).get("non_object") or {}).get("accuracy"),
                "change": change,
            }
        )
    if not rows:
        raise SystemExit(
            f"base_builds.py: no finished run under {', '.join(map(str, roots))} (*/s*/summary.json)"
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| build (threads-base seed) | seed | before | after | gained / lost (p) | non-object before → after |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        c = r["change"]
        empty = f"{r['empty_before']:.3f} → {r['empty_after']:.3f}" if r["empty_before"] is not None else "—"
        lines.append(
            f"| {r['build']} | {r['seed']} | {r['before']:.3f} | {r['after']:.3f} | "
            f"{c['gained']} / {c['lost']} ({c['p_value']:.2g}) | {empty} |"
        )
    changes = [r["change"] for r in rows]
    summed, level = summed_change(changes), seed_level(changes)
    lines += [
        "",
        f"Summed over {len(rows)} runs: {summed['gained']} / {summed['lost']} "
        f"(McNemar p {mcnemar_p(summed['gained'], summed['lost']):.2g}); runs that gain: "
        f"{sum(c['gained'] > c['lost'] for c in changes)} of {len(rows)}.",
        f"At the level of runs: mean {100 * level['mean']:+.2f} points (sd {100 * level['sd']:.2f}), "
        f"t-test p {level['t_p_value']:.2g}, 95% interval [{100 * level['ci'][0]:+.2f}, {100 * level['ci'][1]:+.2f}]."
        if level["t_p_value"] is not None
        else f"At the level of runs: mean {100 * level['mean']:+.2f} points, no t-test "
        "(one run, or every run differs by the same amount).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "roots",
        type=Path,
        nargs="+",
        help="OUT/runs of experiments/sweeps/base_builds.sh, or a build's folder",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    text = table(collect(args.roots))
    print(text)
    if args.out:
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
