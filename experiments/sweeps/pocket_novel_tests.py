"""The pocket_novel comparison's tests, fixed before its runs (results README, "Where the labels
should matter"), from a folder of its runs:

    python experiments/sweeps/pocket_novel_tests.py [FOLDER] [--questions 2500:3500]

FOLDER (default experiments/results/pocket_novel) holds runs named JOBNUM_RUNNAME_sSEED, as the
README's multiruns make them. Each test pairs runs of the same seed and is reported summed over
the seeds (McNemar) and at the seed level (per-seed differences in points, a t-test over seeds,
a two-level bootstrap interval): ViSurf against RLVR, SFT and SFT→RLVR, then every objective
against the base (each run's first evaluation against its last). Then each objective's
accuracy after its run, the mean over its seeds, overall and by data group, beside the base's
(the first evaluation of the runs; every run of a folder starts from the same base). Only
questions in --questions count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visurf.analysis.compare import compare_runs, evaluations, load_outcomes, question_range, within
from visurf.evaluation.paired import paired_change, seed_level, summed_change
from visurf.runs.naming import parse_job_folder

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = {"ViSurf": "visurf_all", "RLVR": "rlvr", "SFT": "sft", "SFT→RLVR": "sft_rlvr"}
GROUPS = {"novel": "novel, one object", "multi": "several objects", "non_object": "nothing there"}


def runs_by_seed(folder: Path, run_name: str) -> dict[int, Path]:
    """The runs of one objective, by seed (`3_rlvr_s3` is RLVR's seed 3; `5_sft_rlvr_s0` is not SFT's)."""
    found = {}
    for run in sorted(folder.iterdir()):
        parsed = parse_job_folder(run.name)
        if parsed and parsed[0] == run_name and (run / "summary.json").exists():
            found[parsed[1]] = run
    return found


def against_its_base(run: Path, questions: range) -> dict:
    """The run's last evaluation against its first (the base), on the questions in range."""
    steps = list(evaluations(run))
    if not steps:
        raise FileNotFoundError(f"{run}: no samples/outcomes_step*.json")
    first, last = (within(load_outcomes(run, step), questions, run) for step in (steps[0], steps[-1]))
    return paired_change(first, last)


def line(name: str, changes: list[dict]) -> str:
    total = summed_change(changes)
    level = seed_level(changes)
    per_seed = ", ".join(f"{100 * d:+.1f}" for d in level["differences"])
    t_p = "-" if level["t_p_value"] is None else f"{level['t_p_value']:.2g}"
    low, high = (100 * x for x in level["ci"])
    return (
        f"| {name} | {len(changes)} | {total['gained']} / {total['lost']} (p {total['p_value']:.2g}) | "
        f"{per_seed} | {100 * level['mean']:+.1f} (t-test p {t_p}; 95% interval {low:+.1f} to {high:+.1f}) |"
    )


def tests(folder: Path, questions: range) -> str:
    runs = {name: runs_by_seed(folder, run_name) for name, run_name in OBJECTIVES.items()}
    if not runs["ViSurf"]:
        raise FileNotFoundError(f"{folder}: no ViSurf runs (N_visurf_all_sK folders with a summary.json)")
    rows = [
        "| test | seeds | summed over seeds | per seed (points) | over seeds (points) |",
        "|" + " --- |" * 5,
    ]
    for other in ("RLVR", "SFT", "SFT→RLVR"):
        seeds = sorted(runs["ViSurf"].keys() & runs[other].keys())
        if seeds:
            changes = [compare_runs(runs[other][s], runs["ViSurf"][s], questions=questions) for s in seeds]
            rows.append(line(f"ViSurf against {other}", changes))
    for name, by_seed in runs.items():
        if by_seed:
            rows.append(
                line(f"{name} against the base", [against_its_base(r, questions) for r in by_seed.values()])
            )
    return "\n".join(rows) + "\n"


def accuracy_by_group(outcomes: list) -> dict[str, float]:
    """Accuracy over all the outcomes ([index, group, correct] rows) and within each data group."""
    out = {"all": sum(c for _, _, c in outcomes) / len(outcomes)}
    for group in GROUPS:
        rows = [c for _, g, c in outcomes if g == group]
        out[group] = sum(rows) / len(rows) if rows else float("nan")
    return out


def group_means(folder: Path, questions: range) -> str:
    """Mean accuracy over seeds, overall and by data group: the base, then each objective after."""
    runs = {name: runs_by_seed(folder, run_name) for name, run_name in OBJECTIVES.items()}
    rows, bases = {}, []
    for name, by_seed in runs.items():
        if not by_seed:
            continue
        scores = []
        for run in by_seed.values():
            first, *_, last = evaluations(run)
            bases.append(within(load_outcomes(run, first), questions, run))
            scores.append(accuracy_by_group(within(load_outcomes(run, last), questions, run)))
        rows[name] = (len(scores), {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]})
    if not bases:
        raise FileNotFoundError(f"{folder}: no runs named N_NAME_sK with a summary.json")
    if any(b != bases[0] for b in bases):
        raise ValueError(f"{folder}: the runs' first evaluations differ; they do not share one base")
    base = accuracy_by_group(bases[0])
    header = ["all", *GROUPS]
    lines = [
        "| mean over seeds | seeds | " + " | ".join(["all", *GROUPS.values()]) + " |",
        "|" + " --- |" * (len(header) + 2),
        "| base | - | " + " | ".join(f"{base[k]:.3f}" for k in header) + " |",
    ]
    for name, (n, mean) in rows.items():
        lines.append(f"| {name} | {n} | " + " | ".join(f"{mean[k]:.3f}" for k in header) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, default=ROOT / "experiments" / "results" / "pocket_novel"
    )
    parser.add_argument("--questions", type=question_range, default=range(2500, 3500))
    args = parser.parse_args(argv)
    print(tests(args.folder, args.questions))
    print(group_means(args.folder, args.questions), end="")


if __name__ == "__main__":
    main()
