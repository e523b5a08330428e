"""experiments/probes/split_power.py: gains and losses against the base, by slice, and the power per size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.probes.split_power import main
from visurf.evaluation.paired import mcnemar_power


def eval_file(path: Path, correct: list[int]) -> str:
    outcomes = [[i, "known", float(c)] for i, c in enumerate(correct)]
    path.write_text(json.dumps({"accuracy": sum(correct) / len(correct), "outcomes": outcomes}))
    return str(path)


def test_counts_each_slice_and_gives_the_power_of_the_measured_rates(tmp_path, capsys):
    base = eval_file(tmp_path / "base.json", [0] * 8 + [1] * 4)
    # slice 1 (questions 0-5): 4 gained, 0 lost; slice 2 (6-11): 1 gained, 2 lost
    run = eval_file(tmp_path / "run.json", [1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
    [row] = main([base, run, "--sizes", "6,12", "--slice", "6"])
    assert (row["gained"], row["lost"], row["questions"]) == (5, 2, 12)
    assert row["slices"] == [(4, 0), (1, 2)]
    assert row["power"] == {
        6: pytest.approx(mcnemar_power(5 / 12, 2 / 12, 6)),
        12: pytest.approx(mcnemar_power(5 / 12, 2 / 12, 12)),
    }
    assert "slices of 6: 4 / 0" in capsys.readouterr().out


def test_two_runs_give_the_chance_that_both_show_the_gain(tmp_path, capsys):
    base = eval_file(tmp_path / "base.json", [0] * 20)
    runs = [eval_file(tmp_path / f"r{i}.json", [1] * (10 + i) + [0] * (10 - i)) for i in range(2)]
    rows = main([base, *runs, "--sizes", "20", "--slice", "0"])
    assert [row["slices"] for row in rows] == [[], []]
    both = rows[0]["power"][20] * rows[1]["power"][20]
    assert f"every run significant: 20 questions {both:.3f}" in capsys.readouterr().out


def test_evaluations_of_different_questions_and_bad_sizes_are_refused(tmp_path, capsys):
    base = eval_file(tmp_path / "base.json", [0] * 6)
    run = eval_file(tmp_path / "run.json", [1] * 8)
    with pytest.raises(SystemExit):
        main([base, run, "--slice", "0"])
    assert "same examples" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([base, base, "--sizes", "500,1k"])
    assert "--sizes takes whole numbers" in capsys.readouterr().err
