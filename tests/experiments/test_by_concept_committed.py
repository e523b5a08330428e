"""experiments/probes/by_concept_committed.py: the by-concept counts from the committed fresh/ files."""

from __future__ import annotations

import json

import pytest

from experiments.probes import by_concept_committed as probe


def test_the_committed_table_is_what_the_committed_outcome_files_give(tmp_path):
    out = tmp_path / "by_concept.md"
    tables = probe.main(["--out", str(out)])
    committed = json.loads((probe.RESULTS / "fresh" / "by_concept.json").read_text())
    assert json.loads(json.dumps(tables)) == committed
    assert out.read_text() == (probe.RESULTS / "fresh" / "by_concept.md").read_text()
    # each question of the range counts once per seed pair
    for table in tables.values():
        for c in table.values():
            assert 0 < c["questions"] <= 3 * len(probe.QUESTIONS)
            assert c["gained"] - c["lost"] == c["b_right"] - c["a_right"]


def test_outcomes_of_another_world_are_refused(tmp_path):
    synth = probe.world_of("pocket", "0_visurf_all_s0")
    items = probe.test_items(synth, 20)
    wrong = tmp_path / "wrong.json"
    # the same indices with every question's group shifted by one: not this world's questions
    groups = [item.group for item in items]
    wrong.write_text(json.dumps({"outcomes": [[i, g, 1.0] for i, g in enumerate(groups[1:] + groups[:1])]}))
    with pytest.raises(ValueError, match="in the recovered world"):
        probe.recovered(wrong, items)
    right = tmp_path / "right.json"
    right.write_text(json.dumps({"outcomes": [[i, g, float(i % 2)] for i, g in enumerate(groups)]}))
    rows = probe.recovered(right, items)
    assert [text for text, _, _ in rows] == [item.question.text for item in items]
    assert [r for _, r, _ in rows] == [bool(i % 2) for i in range(20)]
