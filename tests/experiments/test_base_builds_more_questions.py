"""experiments/sweeps/base_builds_more_questions.*: each run against its base on the questions it
was evaluated on and on new ones."""

from __future__ import annotations

import json
import subprocess

import pytest

from experiments.sweeps.base_builds_more_questions import main
from visurf.config.paths import ROOT


def write(path, right: list[int]):
    path.parent.mkdir(parents=True, exist_ok=True)
    outcomes = [[i, "known" if i % 2 else "novel", float(r)] for i, r in enumerate(right)]
    path.write_text(json.dumps({"outcomes": outcomes}))


def test_each_range_by_hand(tmp_path, capsys):
    # six questions, the first four seen: s0 gains questions 0 and 1 (seen) and loses 4 (new);
    # s1 loses question 2 (seen) and gains 5 (new)
    write(tmp_path / "1-0" / "base.json", [0, 0, 1, 1, 1, 0])
    write(tmp_path / "1-0" / "s0.json", [1, 1, 1, 1, 0, 0])
    write(tmp_path / "1-0" / "s1.json", [0, 0, 0, 1, 1, 1])
    text = main([str(tmp_path), "--seen", "4"])
    assert "| 1-0 | s0 | 2 / 0 (0.5) | 0 / 1 (1) |" in text
    assert "| 1-0 | s1 | 0 / 1 (1) | 1 / 0 (1) |" in text
    assert "seen (0-3): summed 2 / 1" in text and "runs that gain 1 of 2" in text
    assert "new (4-5): summed 1 / 1" in text
    # s0 gains on the seen questions only, s1 on the new ones only
    assert "the same on both ranges: 0 of 2" in text
    capsys.readouterr()


def test_no_new_questions_is_refused(tmp_path):
    write(tmp_path / "1-0" / "base.json", [0, 1])
    write(tmp_path / "1-0" / "s0.json", [1, 1])
    with pytest.raises(SystemExit, match="none in 4:2 past --seen 4"):
        main([str(tmp_path), "--seen", "4"])
    write(tmp_path / "1-0" / "base.json", [0, 1, 0, 0, 1])
    write(tmp_path / "1-0" / "s0.json", [1, 1, 1, 1, 0])
    with pytest.raises(SystemExit, match="none in 2:6 past --seen 2"):
        main([str(tmp_path), "--seen", "2", "--new", "2:6"])  # only five questions
    text = main([str(tmp_path), "--seen", "2", "--new", "3:5"])  # question 2 in neither range
    assert "| 1-0 | s0 | 1 / 0 (1) | 1 / 1 (1) |" in text
    with pytest.raises(SystemExit, match="no \\*/base.json"):
        main([str(tmp_path / "1-0")])


def test_the_script_refuses_bad_arguments(tmp_path):
    script = ROOT / "experiments" / "sweeps" / "base_builds_more_questions.sh"
    env = {"PATH": "/usr/bin:/bin", "BUILDS_CACHE": str(tmp_path)}
    usage = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "usage" in usage.stderr
    few = subprocess.run(
        ["bash", str(script), str(tmp_path), "800", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert few.returncode == 2 and "above SEEN (1000)" in few.stderr
    (tmp_path / "runs" / "1-0" / "s0").mkdir(parents=True)
    (tmp_path / "runs" / "1-0" / "s0" / "summary.json").write_text("{}")
    no_base = subprocess.run(
        ["bash", str(script), str(tmp_path / "out"), "3000", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert no_base.returncode == 2 and "no base cache" in no_base.stderr
