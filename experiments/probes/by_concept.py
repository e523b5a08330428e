"""Two models question by question, per concept the question names, and whether their think text names it.

    python experiments/probes/by_concept.py --concepts yellow,purple,triangle A.json B.json [A2 B2 ...] [--questions 500:2500]

A and B are `python -m visurf.eval ... out=FILE` files (they hold every answer) of the same
questions, in pairs as for `python -m visurf.compare` (one pair per seed, say). For each concept,
on the questions whose text names it: B's gains and losses against A summed over the pairs, with
McNemar's p, and for each side its accuracy and how often its think text names the concept. A
model whose think text never names a concept it answers about is not reading that concept; its
right answers there come from somewhere else (the place of an object, what the other objects are).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from visurf.analysis.compare import question_range
from visurf.evaluation.paired import mcnemar_p
from visurf.rewards.parsing import parse_completion


def load(path: Path) -> list[tuple[str, bool, str]]:
    """(question text, correct, think text) per question, by index."""
    result = json.loads(Path(path).read_text())
    if "answers" not in result or "outcomes" not in result:
        raise ValueError(f"{path} has no answers: it must be the out= file of python -m visurf.eval")
    rows = []
    for (_, _, correct), answer in zip(result["outcomes"], result["answers"]):
        rows.append((answer["problem"], bool(correct), parse_completion(answer["completion"]).think or ""))
    return rows


def by_concept(pairs: list[tuple[list, list]], concepts: list[str], questions: range | None = None) -> dict:
    """Per concept: gained / lost of B against A summed over pairs, p, and each side's accuracy and
    naming rate, on the questions (in `questions`, if given) whose text names the concept."""
    for a, b in pairs:
        if [q for q, _, _ in a] != [q for q, _, _ in b]:
            raise ValueError("by_concept: the two evaluations of a pair are not of the same questions")
    out = {}
    for concept in concepts:
        c = dict.fromkeys(("gained", "lost", "questions", "a_right", "b_right", "a_names", "b_names"), 0)
        for a, b in pairs:
            for index, ((text, a_right, a_think), (_, b_right, b_think)) in enumerate(zip(a, b)):
                if (questions is not None and index not in questions) or concept not in text:
                    continue
                c["questions"] += 1
                c["gained"] += b_right and not a_right
                c["lost"] += a_right and not b_right
                c["a_right"] += a_right
                c["b_right"] += b_right
                c["a_names"] += concept in a_think
                c["b_names"] += concept in b_think
        c["p_value"] = mcnemar_p(c["gained"], c["lost"])
        out[concept] = c
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="experiments/probes/by_concept.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="A B", help="visurf.eval out= files, in pairs")
    parser.add_argument(
        "--concepts", required=True, help="comma-separated words, e.g. yellow,purple,triangle"
    )
    parser.add_argument("--questions", type=question_range, default=None, metavar="START:END")
    args = parser.parse_args(argv)
    if len(args.files) % 2:
        parser.error(f"files come in pairs (A B ...); got {len(args.files)}")
    try:
        pairs = [(load(a), load(b)) for a, b in zip(args.files[::2], args.files[1::2])]
        result = by_concept(pairs, [c.strip() for c in args.concepts.split(",") if c.strip()], args.questions)
    except ValueError as err:
        parser.error(str(err))
    for concept, c in result.items():
        n = max(c["questions"], 1)
        print(
            f"{concept}: {c['questions']} questions; B against A {c['gained']} / {c['lost']} (p {c['p_value']:.2g}); "
            f"accuracy A {c['a_right'] / n:.3f}, B {c['b_right'] / n:.3f}; "
            f"think names it A {c['a_names'] / n:.2f}, B {c['b_names'] / n:.2f}"
        )
    return result


if __name__ == "__main__":
    main()
