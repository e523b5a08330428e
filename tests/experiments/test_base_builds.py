"""experiments/sweeps/base_builds.py: every (build, seed) run against its own start, summed and per run."""

from __future__ import annotations

import json
import subprocess

import pytest

from experiments.sweeps.base_builds import main
from visurf.config.paths import ROOT


def fake(root, build: str, seed: int, gained: int, lost: int, before=0.4, empty=(0.5, 0.6)):
    run = root / build / f"s{seed}"
    run.mkdir(parents=True)
    counts = {"gained": gained, "lost": lost, "unchanged": 100 - gained - lost}
    change = {**counts, "p_value": 0.5, "groups": {"known": counts}}
    evals = [
        {"accuracy": before + d, "groups": {"non_object": {"accuracy": e}}}
        for d, e in ((0, empty[0]), (0.01, empty[1]))
    ]
    (run / "summary.json").write_text(
        json.dumps({"seed": seed, "eval_before": evals[0], "eval_after": evals[1], "change": change})
    )


def test_the_table_sums_the_runs_and_tests_them_as_draws(tmp_path, capsys):
    fake(tmp_path, "1-0", 0, 10, 4)
    fake(tmp_path, "1-0", 1, 8, 6)
    fake(tmp_path, "2-0", 0, 3, 9)
    (tmp_path / "2-0" / "s1").mkdir()  # unfinished: no summary, left out
    text = main([str(tmp_path), "--out", str(tmp_path / "table.md")])
    assert "| 1-0 | 0 | 0.400 | 0.410 | 10 / 4 (0.5) | 0.500 → 0.600 |" in text
    assert "Summed over 3 runs: 21 / 19" in text and "runs that gain: 2 of 3" in text
    # per run: +6, +2, -6 of 100 questions: mean +0.67 points
    assert "mean +0.67 points" in text
    assert (tmp_path / "table.md").read_text() == text


def test_no_finished_run_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no finished run"):
        main([str(tmp_path)])


def test_the_driver_checks_its_arguments():
    done = subprocess.run(
        ["bash", str(ROOT / "experiments" / "sweeps" / "base_builds.sh")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "usage" in done.stderr


def test_one_table_over_a_sweep_and_a_single_builds_folder(tmp_path):
    fake(tmp_path / "a", "1-0", 0, 10, 4)
    fake(tmp_path / "b", "2-0", 0, 3, 9)
    fake(tmp_path / "b", "2-0", 1, 5, 5)
    text = main([str(tmp_path / "a"), str(tmp_path / "b" / "2-0")])
    assert "Summed over 3 runs: 18 / 18" in text and "| 2-0 | 1 |" in text


def test_a_build_and_seed_found_twice_is_refused(tmp_path):
    fake(tmp_path / "a", "1-0", 0, 10, 4)
    fake(tmp_path / "b", "1-0", 0, 3, 9)
    with pytest.raises(SystemExit, match="build 1-0 seed 0 twice"):
        main([str(tmp_path / "a"), str(tmp_path / "b")])


def test_bases_build_side_by_side_only_while_their_threads_fit(tmp_path):
    # A stand-in for python records when each base build starts and ends; the scheduling under
    # test is the driver's own.
    log, shim = tmp_path / "events", tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text(
        "#!/bin/bash\n"
        'if [ "$2" = visurf.recipes.base_model ]; then\n'
        '  echo "start $OMP_NUM_THREADS" >> "$EVENTS"; sleep 1; echo "end $OMP_NUM_THREADS" >> "$EVENTS"\n'
        "fi\n"
    )
    (shim / "python").chmod(0o755)
    env = {"PATH": f"{shim}:/usr/bin:/bin", "EVENTS": str(log), "BUILDS_CORES": "2", "OMP_NUM_THREADS": "1"}
    script = ROOT / "experiments" / "sweeps" / "base_builds.sh"
    done = subprocess.run(
        ["bash", str(script), str(tmp_path / "out"), "1:0 1:1 2:0 1:2", ""],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    busy, most, overlapped = 0, 0, False
    for event in log.read_text().split("\n")[:-1]:
        kind, threads = event.split()
        busy += int(threads) if kind == "start" else -int(threads)
        most = max(most, busy)
        overlapped |= busy == 2 and kind == "start" and threads == "1"
    assert log.read_text().count("start") == 4
    assert most == 2  # never more threads than the 2 cores
    assert overlapped  # the two 1-thread builds ran side by side
