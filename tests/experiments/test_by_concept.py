"""experiments/probes/by_concept.py: gains and losses per named concept, and whether the think text names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.probes.by_concept import main


def eval_file(path: Path, rows: list[tuple[str, int, str]]) -> str:
    """rows: (question, correct, think text) as python -m visurf.eval writes them."""
    path.write_text(
        json.dumps(
            {
                "outcomes": [[i, "novel", float(c)] for i, (_, c, _) in enumerate(rows)],
                "answers": [
                    {"problem": q, "label": "[]", "completion": f"<think>{t}</think><answer>[]</answer>"}
                    for q, _, t in rows
                ],
            }
        )
    )
    return str(path)


QUESTIONS = ["the yellow circle", "the red triangle", "the yellow square", "the triangle"]


def test_counts_per_concept_over_pairs_and_the_rate_each_side_names_it(tmp_path, capsys):
    a = eval_file(
        tmp_path / "a.json", [(q, c, "I see a red square.") for q, c in zip(QUESTIONS, [0, 1, 1, 0])]
    )
    b = eval_file(
        tmp_path / "b.json",
        [
            (q, c, t)
            for q, c, t in zip(QUESTIONS, [1, 0, 1, 1], ["I see a yellow circle.", "", "", "a triangle"])
        ],
    )
    result = main(["--concepts", "yellow,triangle", a, b, a, b])
    yellow, triangle = result["yellow"], result["triangle"]
    # yellow: questions 0 and 2, twice (two pairs); B gains question 0, both have question 2 right
    assert (yellow["questions"], yellow["gained"], yellow["lost"]) == (4, 2, 0)
    assert (yellow["a_right"], yellow["b_right"], yellow["a_names"], yellow["b_names"]) == (2, 4, 0, 2)
    # triangle: questions 1 (lost by B) and 3 (gained by B, whose think names the triangle)
    assert (triangle["gained"], triangle["lost"], triangle["b_names"]) == (2, 2, 2)
    assert triangle["p_value"] == pytest.approx(1.0)
    assert "think names it A 0.00, B 0.50" in capsys.readouterr().out
    only_late = main(["--concepts", "yellow", a, b, "--questions", "1:4"])["yellow"]
    assert (only_late["questions"], only_late["gained"]) == (1, 0)


def test_files_without_answers_or_of_other_questions_are_refused(tmp_path, capsys):
    a = eval_file(tmp_path / "a.json", [(q, 0, "") for q in QUESTIONS])
    other = eval_file(tmp_path / "other.json", [(q + "s", 0, "") for q in QUESTIONS])
    metrics_only = tmp_path / "m.json"
    metrics_only.write_text(json.dumps({"accuracy": 0.5, "outcomes": []}))
    for files, message in (([a, other], "not of the same questions"), ([a, str(metrics_only)], "no answers")):
        with pytest.raises(SystemExit):
            main(["--concepts", "yellow", *files])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--concepts", "yellow", a])  # not a pair
