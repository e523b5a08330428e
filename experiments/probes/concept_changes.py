"""Runs' answers per concept the question names, first evaluation against last, from their committed files.

    python experiments/probes/concept_changes.py RUN [RUN ...] [--curve]

A run directory's `samples/outcomes_stepNNNNN.json` files hold each evaluated question's index,
data group and score, not its text. A synthetic question depends only on the world, the split and
its index, so its text is recovered from the run's own config.yaml (`data.synth`,
`data.test_split`); every recovered question's data group is checked against the recorded one.

For each concept of the world (known and novel colours, shapes, relations), on the questions
whose text names it: how many there are, how many the first evaluation (the base) gets right,
and the answers gained and lost by the last, summed over the runs given, with McNemar's p.
With --curve, each run's accuracy per concept at every evaluation instead (a run evaluated
during training, eval.every_n_batches > 0, shows where a concept moves).

With --builds, each RUN is a build's folder of seed runs (`base_builds/RECIPE/BUILD`, holding
s0, s1, ...): per build and concept, the base's accuracy on the even-numbered questions and the
change (last evaluation minus first, summed over the seeds) on the odd-numbered ones, and per kind
of concept Spearman's correlation of the two over all (build, concept) cells. Measuring the two
on different questions keeps a question's own luck at the first evaluation, which the last one
need not repeat, out of the correlation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from experiments.probes.by_concept import by_concept
from visurf.data.synth import generate_items, split_seed
from visurf.data.synth_config import world_config
from visurf.runs.rundir import RunDir


def concepts(synth: dict) -> list[tuple[str, str]]:
    """(concept, 'known' | 'novel') for every concept of the world `synth` describes."""
    world = world_config(synth)
    return [
        (name, status)
        for kind in ("colors", "shapes", "relations")
        for status in ("known", "novel")
        for name in getattr(world, f"{status}_{kind}")
    ]


def outcomes_with_text(run: Path) -> tuple[dict, dict[int, list[tuple[str, bool]]]]:
    """A run's world and, per evaluation step, (question text, right) per question."""
    rundir = RunDir(run)
    cfg = rundir.read_config()
    if cfg.data.get("source") != "synth":
        raise ValueError(f"{run}: not a run on the synthetic world (data.source={cfg.data.get('source')!r})")
    synth = dict(cfg.data.synth)
    split = str(cfg.data.test_split)
    files = rundir.evaluations()
    if not files:
        raise ValueError(f"{run}: no evaluations (samples/outcomes_step*.json)")
    loaded = {step: json.loads(path.read_text()) for step, path in files.items()}
    count = 1 + max(index for outcomes in loaded.values() for index, _, _ in outcomes)
    items = generate_items(count, split_seed(synth["seed"], split), world_config(synth))
    by_step = {}
    for step, outcomes in loaded.items():
        rows = []
        for index, group, score in outcomes:
            if items[index].group != group:
                raise ValueError(
                    f"{files[step]}: question {index} is '{items[index].group}' in the run's world and split "
                    f"({split}), '{group}' in the file"
                )
            rows.append((items[index].question.text, score >= 0.5))
        by_step[step] = rows
    return synth, by_step


def first_and_last(run: Path) -> tuple[dict, list[tuple[str, bool]], list[tuple[str, bool]]]:
    """A run's world and its (question text, right) rows at its first and last evaluation."""
    synth, by_step = outcomes_with_text(run)
    steps = sorted(by_step)
    return synth, by_step[steps[0]], by_step[steps[-1]]


def changes(runs: list[Path]) -> dict[str, dict]:
    """Per concept, summed over `runs` (one world): its kind, questions, right at the first
    evaluation (`a_right`) and at the last (`b_right`), gained, lost and McNemar's p."""
    world, pairs = None, []
    for run in runs:
        synth, first, last = first_and_last(run)
        if world is not None and synth != world:
            raise ValueError(f"{run}: another world than {runs[0]}; compare runs of one world")
        world = synth
        pairs.append(
            ([(text, right, "") for text, right in first], [(text, right, "") for text, right in last])
        )
    kinds = dict(concepts(world))
    table = by_concept(pairs, list(kinds))  # no think texts here: its naming counts are dropped
    return {
        concept: {"status": kinds[concept], **{k: v for k, v in c.items() if k not in ("a_names", "b_names")}}
        for concept, c in table.items()
    }


def curve(run: Path) -> tuple[list[int], dict[str, list[float | None]]]:
    """A run's evaluation steps and, per concept, its accuracy at each."""
    synth, by_step = outcomes_with_text(run)
    steps = sorted(by_step)
    out = {}
    for concept, _ in concepts(synth):
        accuracy = []
        for step in steps:
            named = [right for text, right in by_step[step] if concept in text]
            accuracy.append(sum(named) / len(named) if named else None)
        out[concept] = accuracy
    return steps, out


def halves(builds: list[Path]) -> dict:
    """Per build folder and concept: the first evaluation's accuracy on even-numbered questions and
    the mean change by the last on odd-numbered ones, summed over the folder's seed runs; and per
    kind ('known', 'novel') Spearman's rho and p of the two over all (build, concept) cells."""
    cells = []
    for build in builds:
        runs = sorted(path for path in build.glob("s[0-9]*") if path.is_dir())
        if not runs:
            raise ValueError(f"{build}: no seed runs (s0, s1, ...) in it")
        counts = {}
        for run in runs:
            synth, first, last = first_and_last(run)
            for concept, status in concepts(synth):
                c = counts.setdefault((concept, status), {"right": 0, "even": 0, "change": 0, "odd": 0})
                for index, ((text, a), (_, b)) in enumerate(zip(first, last)):
                    if concept not in text:
                        continue
                    if index % 2 == 0:
                        c["right"] += a
                        c["even"] += 1
                    else:
                        c["change"] += int(b) - int(a)
                        c["odd"] += 1
        for (concept, status), c in counts.items():
            if c["even"] and c["odd"]:
                cells.append(
                    {
                        "build": str(build),
                        "concept": concept,
                        "status": status,
                        "first": c["right"] / c["even"],
                        "change": c["change"] / c["odd"],
                    }
                )
    correlation = {}
    for status in ("known", "novel"):
        mine = [c for c in cells if c["status"] == status]
        first, change = [c["first"] for c in mine], [c["change"] for c in mine]
        if len(mine) >= 3 and len(set(first)) > 1 and len(set(change)) > 1:  # else rho is undefined
            rho, p = spearmanr(first, change)
            correlation[status] = {"cells": len(mine), "rho": float(rho), "p_value": float(p)}
    return {"cells": cells, "correlation": correlation}


def halves_markdown(result: dict) -> str:
    lines = [
        "Per build and concept: first-evaluation accuracy on even questions, change by the last on odd ones",
        "",
        "| build | concept | kind | first (even) | change (odd) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for c in result["cells"]:
        lines.append(
            f"| {c['build']} | {c['concept']} | {c['status']} | {c['first']:.3f} | {c['change']:+.3f} |"
        )
    lines.append("")
    for status, r in result["correlation"].items():
        lines.append(f"{status}: Spearman rho {r['rho']:+.2f} over {r['cells']} cells (p {r['p_value']:.2g})")
    return "\n".join(lines) + "\n"


def changes_markdown(table: dict, runs: list[Path]) -> str:
    lines = [
        f"{len(runs)} run(s), first evaluation against last, per concept the question names:",
        "",
        "| concept | kind | questions | first | last | gained / lost | McNemar p |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for concept, c in table.items():
        n = max(c["questions"], 1)
        lines.append(
            f"| {concept} | {c['status']} | {c['questions']} | {c['a_right'] / n:.3f} | {c['b_right'] / n:.3f} "
            f"| {c['gained']} / {c['lost']} | {c['p_value']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def curve_markdown(run: Path, steps: list[int], accuracy: dict) -> str:
    lines = [
        f"{run}: accuracy per concept at each evaluation",
        "",
        "| concept | " + " | ".join(f"step {s}" for s in steps) + " |",
        "| --- |" + " ---: |" * len(steps),
    ]
    for concept, values in accuracy.items():
        cells = ["" if v is None else f"{v:.3f}" for v in values]
        lines.append(f"| {concept} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="experiments/probes/concept_changes.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "runs", type=Path, nargs="+", metavar="RUN", help="run directories of one synthetic world"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--curve", action="store_true", help="each run's accuracy per concept at every evaluation"
    )
    mode.add_argument(
        "--builds",
        action="store_true",
        help="RUNs are build folders of seed runs: base accuracy against change",
    )
    args = parser.parse_args(argv)
    try:
        if args.builds:
            result = halves(args.runs)
            print(halves_markdown(result), end="")
            return result
        if args.curve:
            result = {}
            for run in args.runs:
                steps, accuracy = curve(run)
                print(curve_markdown(run, steps, accuracy))
                result[str(run)] = {"steps": steps, "accuracy": accuracy}
            return result
        table = changes(args.runs)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    print(changes_markdown(table, args.runs), end="")
    return table


if __name__ == "__main__":
    main()
