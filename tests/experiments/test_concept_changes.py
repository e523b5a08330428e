"""experiments/probes/concept_changes.py: a run's answers per named concept, recovered from its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from experiments.probes import concept_changes as probe
from visurf.data.synth import generate_items, split_seed
from visurf.data.synth_config import world_config

COMMITTED = Path(__file__).resolve().parents[2] / "experiments" / "results" / "base_builds" / "heldout_dapo"
SYNTH = {"num_train": 10, "num_test": 12, "num_val": 12, "seed": 5, "novel_fraction": 0.5, "grid": 4}


def write_run(folder: Path, scores: dict[int, list[float]], split: str = "val") -> list:
    """A run directory of the synthetic world SYNTH with one outcome file per step."""
    items = generate_items(12, split_seed(SYNTH["seed"], split), world_config(SYNTH))
    (folder / "samples").mkdir(parents=True)
    config = {"data": {"source": "synth", "test_split": split, "synth": SYNTH}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    for step, right in scores.items():
        outcomes = [[i, item.group, s] for i, (item, s) in enumerate(zip(items, right))]
        (folder / "samples" / f"outcomes_step{step:05d}.json").write_text(json.dumps(outcomes))
    return items


def test_changes_by_hand(tmp_path):
    first = [float(i % 2) for i in range(12)]  # odd questions right at step 0
    last = [float(i % 3 == 0) for i in range(12)]  # every third right at step 40
    items = write_run(tmp_path / "run", {0: first, 20: [0.0] * 12, 40: last})
    table = probe.changes([tmp_path / "run"])
    for concept, status in probe.concepts(SYNTH):
        named = [i for i, item in enumerate(items) if concept in item.question.text]
        c = table[concept]
        assert c["status"] == status
        assert c["questions"] == len(named)
        assert c["a_right"] == sum(i % 2 for i in named)
        assert c["b_right"] == sum(i % 3 == 0 for i in named)  # the last evaluation, not step 20
        assert c["gained"] == sum(i % 3 == 0 and i % 2 == 0 for i in named)
        assert c["lost"] == sum(i % 2 == 1 and i % 3 != 0 for i in named)
    assert any(c["questions"] for c in table.values())
    # two runs are summed
    write_run(tmp_path / "again", {0: first, 40: last})
    twice = probe.changes([tmp_path / "run", tmp_path / "again"])
    assert all(twice[k]["questions"] == 2 * table[k]["questions"] for k in table)


def test_curve_by_hand(tmp_path):
    items = write_run(tmp_path / "run", {0: [0.0] * 12, 10: [1.0] * 12})
    steps, accuracy = probe.curve(tmp_path / "run")
    assert steps == [0, 10]
    for concept, values in accuracy.items():
        if any(concept in item.question.text for item in items):
            assert values == [0.0, 1.0]
        else:
            assert values == [None, None]


def test_halves_measure_base_and_change_on_different_questions(tmp_path):
    # right at step 0 only on even questions, at the last step on every question: the even half
    # gives first = 1 and the odd half a change of +1 wherever a concept is named on both halves
    for seed in ("s0", "s1"):
        write_run(tmp_path / "build" / seed, {0: [float(i % 2 == 0) for i in range(12)], 80: [1.0] * 12})
    result = probe.halves([tmp_path / "build"])
    assert result["cells"]
    for cell in result["cells"]:
        assert cell["first"] == 1.0 and cell["change"] == 1.0
    assert result["correlation"] == {}  # constant cells: no correlation is defined
    with pytest.raises(ValueError, match="no seed runs"):
        probe.halves([tmp_path / "build" / "s0" / "samples"])


def test_a_question_of_another_world_is_refused(tmp_path):
    items = write_run(tmp_path / "run", {0: [1.0] * 12})
    path = tmp_path / "run" / "samples" / "outcomes_step00000.json"
    outcomes = json.loads(path.read_text())
    wrong = next(g for g in ("known", "novel", "non_object", "multi") if g != items[3].group)
    outcomes[3][1] = wrong
    path.write_text(json.dumps(outcomes))
    with pytest.raises(ValueError, match=f"question 3 is '{items[3].group}'"):
        probe.changes([tmp_path / "run"])


def test_the_cli_reads_committed_runs_and_names_bad_input(tmp_path, capsys):
    runs = [COMMITTED / "2-1" / "s0", COMMITTED / "2-1" / "s1"]
    table = probe.main([str(r) for r in runs])
    out = capsys.readouterr().out
    assert "| purple | novel |" in out
    for c in table.values():
        assert c["gained"] - c["lost"] == c["b_right"] - c["a_right"]
        assert 0 < c["questions"] <= 2 * 1000
    with pytest.raises(SystemExit):
        probe.main([str(tmp_path)])  # not a run directory
    assert "config.yaml is missing" in capsys.readouterr().err
