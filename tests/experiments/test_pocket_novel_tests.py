"""experiments/sweeps/pocket_novel_tests.py: the fixed tests of the pocket_novel comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.sweeps import pocket_novel_tests as script


def write_run(folder: Path, name: str, first: list[int], last: list[int]) -> None:
    """A run whose evaluations got question i right where the list has 1 (questions 0-3 novel, 4-5 multi)."""
    run = folder / name
    (run / "samples").mkdir(parents=True)
    group = lambda i: "novel" if i < 4 else "multi"  # noqa: E731
    for step, right in ((0, first), (480, last)):
        rows = [[i, group(i), float(c)] for i, c in enumerate(right)]
        (run / "samples" / f"outcomes_step{step:05d}.json").write_text(json.dumps(rows))
    (run / "summary.json").write_text("{}")


BASE = [0, 0, 1, 0, 0, 1]


def test_the_tables_counts_by_hand(tmp_path):
    write_run(tmp_path, "0_rlvr_s0", BASE, [1, 0, 1, 0, 0, 1])
    write_run(tmp_path, "1_rlvr_s1", BASE, [0, 0, 1, 0, 0, 0])
    write_run(tmp_path, "0_visurf_all_s0", BASE, [1, 1, 1, 1, 0, 1])
    write_run(tmp_path, "1_visurf_all_s1", BASE, [1, 0, 1, 0, 0, 1])
    write_run(tmp_path, "5_sft_rlvr_s0", BASE, [0, 1, 0, 0, 0, 1])  # not one of SFT's runs
    write_run(tmp_path, "2_sft_s0", BASE, [0, 0, 0, 0, 0, 0])
    text = script.tests(tmp_path, range(0, 6))
    lines = {row.split(" | ")[0].strip("| "): row for row in text.splitlines()[2:]}
    # ViSurf against RLVR: seed 0 gains 2 (questions 1, 3), seed 1 gains 1 (0) and 1 (5)
    assert "| 2 | 4 / 0 " in lines["ViSurf against RLVR"]
    assert "+33.3, +33.3" in lines["ViSurf against RLVR"]  # (2 - 0) / 6, (2 - 0) / 6
    # SFT has seed 0 only; SFT→RLVR is not taken for SFT
    assert "| 1 | 5 / 0 " in lines["ViSurf against SFT"]
    assert "| 1 | 3 / 0 " in lines["ViSurf against SFT→RLVR"]
    assert "| 1 | 0 / 2 " in lines["SFT against the base"]
    assert "| 2 | 1 / 1 " in lines["RLVR against the base"]
    # a range keeps only its questions: 4-5 are the multi ones
    text = script.tests(tmp_path, range(4, 6))
    assert "| 2 | 1 / 0 " in text.splitlines()[2]


def test_bad_input_is_named(tmp_path):
    write_run(tmp_path, "0_rlvr_s0", BASE, BASE)
    with pytest.raises(FileNotFoundError, match="no ViSurf runs"):
        script.tests(tmp_path, range(0, 6))
    with pytest.raises(SystemExit):
        script.main([str(tmp_path), "--questions", "9:3"])
    with pytest.raises(SystemExit):
        script.main([str(tmp_path), "--questions", "all"])


def test_the_group_means_by_hand(tmp_path):
    write_run(tmp_path, "0_rlvr_s0", BASE, [1, 0, 1, 0, 0, 1])
    write_run(tmp_path, "1_rlvr_s1", BASE, [0, 0, 1, 0, 0, 0])
    write_run(tmp_path, "0_visurf_all_s0", BASE, [1, 1, 1, 1, 0, 1])
    lines = {
        row.split(" | ")[0].strip("| "): row for row in script.group_means(tmp_path, range(0, 6)).splitlines()
    }
    # all, novel (questions 0-3), several objects (4-5), nothing there (none in this split)
    assert lines["base"] == "| base | - | 0.333 | 0.250 | 0.500 | nan |"
    assert (
        lines["RLVR"] == "| RLVR | 2 | 0.333 | 0.375 | 0.250 | nan |"
    )  # (3/6 + 1/6) / 2, (2/4 + 1/4) / 2, (1/2 + 0) / 2
    assert lines["ViSurf"] == "| ViSurf | 1 | 0.833 | 1.000 | 0.500 | nan |"
    assert "SFT" not in lines


def test_runs_from_different_bases_are_refused(tmp_path):
    write_run(tmp_path, "0_rlvr_s0", BASE, BASE)
    write_run(tmp_path, "0_visurf_all_s0", [1, 1, 1, 0, 0, 1], BASE)
    with pytest.raises(ValueError, match="do not share one base"):
        script.group_means(tmp_path, range(0, 6))
