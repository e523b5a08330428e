"""ViSurf against RLVR per novel concept, recomputed from the committed `fresh/` files alone.

    python experiments/probes/by_concept_committed.py [--out experiments/results/fresh/by_concept.md]

The committed `experiments/results/fresh/SWEEP/RUN.json` files hold every test question's outcome
(index, data group, right or not) but not its text or the model's answer. A synthetic test
question depends on its index and the world only, so its text is recovered here from the world
the sweep's runs recorded (`experiments/results/SWEEP/RUN/config.yaml`, `data.synth`); every
recovered question's data group is checked against the group the evaluation recorded. The
think texts are not committed, so whether a think text names a concept cannot be recomputed
here (that needs the evaluations' answers: `experiments/probes/by_concept.py` on
`visurf.eval` out= files).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from experiments.probes.by_concept import by_concept
from visurf.data.synth import generate_items, split_seed
from visurf.data.synth_config import world_config

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"
# The pairs of the results README: RLVR (A) against ViSurf with all its controls (B), per seed.
PAIRS = {
    "pocket": [
        ("6_rlvr_s0", "0_visurf_all_s0"),
        ("7_rlvr_s1", "1_visurf_all_s1"),
        ("8_rlvr_s2", "2_visurf_all_s2"),
    ],
    "pocket_swapped": [
        ("0_rlvr_s0", "0_visurf_all_s0"),
        ("1_rlvr_s1", "1_visurf_all_s1"),
        ("2_rlvr_s2", "2_visurf_all_s2"),
    ],
}
QUESTIONS = range(500, 2500)  # the questions no run was evaluated on while it trained


def world_of(sweep: str, run: str) -> dict:
    """The `data.synth` block the run recorded in its committed config.yaml."""
    return yaml.safe_load((RESULTS / sweep / run / "config.yaml").read_text())["data"]["synth"]


def test_items(synth: dict, num: int) -> list:
    """The first `num` questions of the test split of the world `synth` describes."""
    return generate_items(num, split_seed(synth["seed"], "test"), world_config(synth))


def recovered(path: Path, items: list) -> list[tuple[str, bool, str]]:
    """(question text, right, "") per question of a committed fresh/ file: no think text is
    committed, so the naming counts by_concept makes are dropped from this table."""
    outcomes = json.loads(path.read_text())["outcomes"]
    if len(outcomes) > len(items):
        raise ValueError(f"{path}: {len(outcomes)} questions, only {len(items)} recovered")
    rows = []
    for (index, group, right), item in zip(outcomes, items):
        if item.group != group:
            raise ValueError(
                f"{path}: question {index} is '{item.group}' in the recovered world, '{group}' in the file"
            )
        rows.append((item.question.text, bool(right), ""))
    return rows


def novel_concepts(synth: dict) -> list[str]:
    world = world_config(synth)
    return [*world.novel_colors, *world.novel_shapes, *world.novel_relations]


def sweep_table(sweep: str) -> dict:
    synth = world_of(sweep, PAIRS[sweep][0][1])
    for a, b in PAIRS[sweep]:
        if world_of(sweep, a) != synth or world_of(sweep, b) != synth:
            raise ValueError(f"{sweep}: {a} and {b} were not run on the same world")
    fresh, items = RESULTS / "fresh" / sweep, test_items(synth, QUESTIONS.stop)
    pairs = [
        (recovered(fresh / f"{a}.json", items), recovered(fresh / f"{b}.json", items))
        for a, b in PAIRS[sweep]
    ]
    return by_concept(pairs, novel_concepts(synth), QUESTIONS)


def to_markdown(tables: dict) -> str:
    lines = [
        "ViSurf (`all`) against RLVR per novel concept the question names, questions 500-2,499, summed over",
        "seeds 0, 1, 2 (`python experiments/probes/by_concept_committed.py`, from the committed `fresh/` files).",
        "",
        "| split | concept | questions | ViSurf gained / lost | McNemar p | RLVR accuracy | ViSurf accuracy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sweep, table in tables.items():
        for concept, c in table.items():
            n = max(c["questions"], 1)
            lines.append(
                f"| {sweep} | {concept} | {c['questions']} | {c['gained']} / {c['lost']} | {c['p_value']:.2g} "
                f"| {c['a_right'] / n:.3f} | {c['b_right'] / n:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="experiments/probes/by_concept_committed.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "fresh" / "by_concept.md")
    args = parser.parse_args(argv)
    tables = {}
    for sweep in PAIRS:
        tables[sweep] = {
            concept: {k: v for k, v in c.items() if k not in ("a_names", "b_names")}
            for concept, c in sweep_table(sweep).items()
        }
    args.out.write_text(to_markdown(tables))
    args.out.with_suffix(".json").write_text(json.dumps(tables, indent=2) + "\n")
    print(to_markdown(tables), end="")
    return tables


if __name__ == "__main__":
    main()
