"""Runs compared question by question (`python -m visurf.compare RUN_A RUN_B` prints them).

Each evaluation writes `samples/outcomes_stepN.json`, whether every test question was answered
right. Two runs evaluated on the same test split (same data config, same `eval.num_examples`)
can then be compared as summary.json's `change` compares one run's evaluations: `gained` (wrong
in A, right in B), `lost`, `unchanged`, per group, and McNemar's exact p-value (paired.py).
Each run's last evaluation is used unless `--step` names another. A or B may also be the `out=`
file of `python -m visurf.eval` (which records every question's outcome too), e.g. two
checkpoints evaluated on a larger validation split; with two such files `--show N` prints N
questions B lost and N it gained (`--group` picks a data group), each with the label and both
answers. Several pairs (`A1 B1 A2 B2 ...`, e.g. one
per seed) are also summed: gains and losses added over the pairs, with one p-value.
`--questions 500:2500` compares only the questions of those indices, e.g. the ones a larger
evaluation added to those the runs were evaluated on while they trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from visurf.evaluation.paired import mcnemar_p, paired_change, seed_level, summed_change
from visurf.runs.rundir import RunDir

# What tells a pair's other run apart besides its seed: its objective, reward control, injection.
PAIR_KEYS = ("against", "reward_control", "injection")


def evaluations(run_dir: str | Path) -> dict[int, Path]:
    """The run's outcome files by evaluation step, in step order."""
    return RunDir(run_dir).evaluations()


def outcomes_file(run_dir: str | Path, step: int | None = None) -> Path:
    """The outcomes of the run's evaluation at `step` (default: its last evaluation)."""
    files = evaluations(run_dir)
    if step is not None:
        if step not in files:
            path = RunDir(run_dir).outcomes(step)
            raise FileNotFoundError(f"{run_dir} has no evaluation at step {step} ({path} is missing)")
        return files[step]
    if not files:
        raise FileNotFoundError(
            f"{run_dir} has no samples/outcomes_step*.json (runs before visurf wrote them cannot be compared)"
        )
    return list(files.values())[-1]


def load_outcomes(source: str | Path, step: int | None = None) -> list:
    """[index, group, correct] per question: of a run's evaluation, or of a visurf.eval JSON file."""
    source = Path(source)
    if source.is_file():
        if step is not None:
            raise ValueError(f"--step applies to run directories; {source} is one evaluation")
        result = json.loads(source.read_text())
        if not isinstance(result, dict) or "outcomes" not in result:
            raise ValueError(f"{source} has no 'outcomes': it is not the out= file of python -m visurf.eval")
        return result["outcomes"]
    return json.loads(outcomes_file(source, step).read_text())


def load_answers(source: str | Path) -> list[dict]:
    """{problem, label, completion} per question, of a visurf.eval out= file."""
    source = Path(source)
    result = json.loads(source.read_text()) if source.is_file() else None
    if not isinstance(result, dict) or "answers" not in result:
        raise ValueError(
            f"--show needs the answers that python -m visurf.eval writes to its out= file; {source} has none "
            "(a run directory keeps only the first answers of each evaluation, in samples/)"
        )
    return result["answers"]


def changed_answers(
    run_a, run_b, group: str | None = None, limit: int = 5, questions: range | None = None
) -> dict[str, list[dict]]:
    """Up to `limit` questions B `lost` (right in A, wrong in B) and `gained`, in split order (in
    data group `group` and index range `questions` if given), each {index, group, problem, label,
    a, b}: the answers of A and B."""
    a, b = load_answers(run_a), load_answers(run_b)
    before = {key: correct for key, _, correct in load_outcomes(run_a)}  # same questions: compare_runs
    shown = {"lost": [], "gained": []}
    for key, grp, correct in within(load_outcomes(run_b), questions, run_b):
        if (group is not None and grp != group) or bool(before[key]) == bool(correct):
            continue
        kind = "gained" if correct else "lost"
        if len(shown[kind]) < limit:
            shown[kind].append(
                {"index": key, "group": grp, **{k: a[key][k] for k in ("problem", "label")}}
                | {"a": a[key]["completion"], "b": b[key]["completion"]}
            )
    return shown


def compare_runs(
    run_a: str | Path, run_b: str | Path, step: int | None = None, questions: range | None = None
) -> dict:
    """summary.json's `change` between two runs (or visurf.eval out= files): what B answers right
    or wrong that A did not; on the questions whose index is in `questions` (default: all)."""
    before = within(load_outcomes(run_a, step), questions, run_a)
    after = within(load_outcomes(run_b, step), questions, run_b)
    groups_a = {key: group for key, group, _ in before}
    if any(groups_a.get(key, group) != group for key, group, _ in after):
        raise ValueError(f"{run_a} and {run_b} were evaluated on different test questions (groups differ)")
    return paired_change(before, after)


def within(outcomes: list, questions: range | None, source) -> list:
    """The outcomes of the questions whose index is in `questions` (all of them for None)."""
    if questions is None:
        return outcomes
    kept = [outcome for outcome in outcomes if outcome[0] in questions]
    if not kept:
        raise ValueError(
            f"{source} has no question in {questions.start}:{questions.stop} "
            f"(its {len(outcomes)} questions are numbered from 0)"
        )
    return kept


def question_range(text: str) -> range:
    """'START:END' as the range of question indices it names (END excluded)."""
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        first, stop = int(start or 0), int(end)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes START:END (e.g. 500:2500), got {text!r}") from None
    if not 0 <= first < stop:
        raise argparse.ArgumentTypeError(f"START:END needs 0 <= START < END, got {text!r}")
    return range(first, stop)


def against_objective(runs, objective: str = "visurf"):
    """`objective`'s runs against every other objective's run of the same seed, one row per pair.

    `runs` is `visurf.analysis.report.collect_runs(sweep_dir)`. Columns: against, reward_control (of the
    other run), seed, gained, lost, unchanged, p_value; empty when no seed has both.
    """
    return _against(runs[runs.objective == objective], runs[runs.objective != objective])


def against_control(runs, control: str = "all", objective: str = "visurf"):
    """The ablation: `objective`'s runs under reward control `control` against its runs under
    every other control, of the same seed and injection. The same columns as
    `against_objective` (`against` is then `objective`, `reward_control` the other run's control)."""
    own = runs[runs.objective == objective]
    return _against(own[own.reward_control == control], own[own.reward_control != control], same="injection")


def against_injection(runs, injection: str = "visurf", objective: str = "visurf"):
    """The injection sweep: `objective`'s runs with injection preset `injection` against its runs
    with every other preset, of the same seed and reward control (`injection`: the other run's)."""
    own = runs[runs.objective == objective]
    if "injection" not in own:
        own = own.assign(injection=injection)  # a table from before the key: every run is ViSurf's
    return _against(own[own.injection == injection], own[own.injection != injection], same="reward_control")


def _against(mine, others, same: str | None = None):
    """Each of `others` against the run of `mine` with its seed (and the same `same` column)."""
    import pandas as pd

    rows = []
    for _, other in others.iterrows():
        partners = mine[mine.seed == other.seed]
        if same is not None and same in partners:
            partners = partners[partners[same].fillna("") == ("" if _missing(other[same]) else other[same])]
        for _, run in partners.iterrows():
            change = compare_runs(other.run_dir, run.run_dir)
            rows.append(
                {
                    "against": other.objective,
                    "reward_control": other.reward_control,
                    "injection": other.get("injection"),
                    "seed": other.seed,
                    **{k: change[k] for k in ("gained", "lost", "unchanged", "p_value", "groups")},
                }
            )
    columns = ["against", *PAIR_KEYS[1:], "seed", "gained", "lost", "unchanged", "p_value", "groups"]
    return pd.DataFrame(rows, columns=columns)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def summed_over_seeds(table):
    """`against_objective`'s table summed over seeds: one row per (against, reward_control) with
    the gains, losses and unchanged added over its seeds, McNemar's p-value of the sums, and the
    number of seeds summed; where the table has per-group counts (`groups`), those summed too."""
    import pandas as pd

    rows = []
    keys = [k for k in PAIR_KEYS if k in table]
    for values, seeds in table.groupby(keys, dropna=False, sort=True):
        gained, lost = int(seeds.gained.sum()), int(seeds.lost.sum())
        row = {
            **dict(zip(keys, values)),
            "seeds": len(seeds),
            "gained": gained,
            "lost": lost,
            "unchanged": int(seeds.unchanged.sum()),
            "p_value": mcnemar_p(gained, lost),
        }
        if "groups" in seeds:
            row["groups"] = summed_change([{"groups": g} for g in seeds.groups])["groups"]
        rows.append(row)
    columns = [*keys, "seeds", "gained", "lost", "unchanged", "p_value"]
    return pd.DataFrame(rows, columns=columns + (["groups"] if "groups" in table else []))


def seed_level_over_seeds(table):
    """`against_objective`'s table tested at the level of seeds: one row per (against,
    reward_control, injection) with the per-seed accuracy differences (gained - lost over the
    questions, this side minus the other), their mean and sd, a t-test over seeds and a two-level
    bootstrap 95% interval (`visurf.evaluation.paired.seed_level`). Summing McNemar counts over
    seeds tests these trained models; this tests the method, whose seeds vary."""
    import pandas as pd

    rows = []
    keys = [k for k in PAIR_KEYS if k in table]
    for values, seeds in table.groupby(keys, dropna=False, sort=True):
        level = seed_level(seeds[["gained", "lost", "unchanged"]].to_dict("records"))
        rows.append({**dict(zip(keys, values)), **level})
    columns = [*keys, "seeds", "differences", "mean", "sd", "t_p_value", "ci"]
    return pd.DataFrame(rows, columns=columns)


def against_start(runs):
    """Each run's later evaluations against its own first one (step 0, before training), summed
    over the seeds evaluated at that step: the learning curve question by question.

    `runs` is `visurf.analysis.report.collect_runs(sweep_dir)`. One row per (objective, reward_control,
    step): seeds, gained, lost, unchanged, p_value and `groups` (the counts per data group). Runs
    with fewer than two evaluations are left out.
    """
    import pandas as pd

    keys = ["objective", *(k for k in PAIR_KEYS[1:] if k in runs)]
    rows = []
    for values, group in runs.groupby(keys, dropna=False, sort=False):
        by_step: dict[int, list[dict]] = {}
        for run_dir in group.run_dir:
            files = list(evaluations(run_dir).items())
            if len(files) < 2:
                continue
            start = json.loads(files[0][1].read_text())
            for step, path in files[1:]:
                by_step.setdefault(step, []).append(paired_change(start, json.loads(path.read_text())))
        for step, changes in sorted(by_step.items()):
            summed = summed_change(changes)
            rows.append(
                {**dict(zip(keys, values)), "step": step, "seeds": len(changes)}
                | {k: summed[k] for k in ("gained", "lost", "unchanged", "p_value", "groups")}
            )
    columns = [
        *keys,
        "step",
        "seeds",
        "gained",
        "lost",
        "unchanged",
        "p_value",
        "groups",
    ]
    return pd.DataFrame(rows, columns=columns)
