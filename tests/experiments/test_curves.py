"""experiments/sweeps/curves.py: windowed means of a run's metrics, read from its metrics.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from experiments.sweeps import curves

ROOT = Path(__file__).resolve().parents[2]


def test_windows_average_logged_steps_and_skip_evaluation_rows():
    metrics = pd.DataFrame(
        {
            "step": [0, 0, 1, 2, 3, 4, 4],
            "train/reward": [None, 1.0, 2.0, 3.0, 4.0, 5.0, None],
            "eval/accuracy": [0.3, None, None, None, None, None, 0.4],
        }
    )
    out = curves.windowed(metrics, ["reward", "absent"], window=2)
    assert list(out["step"]) == [0, 2, 4]
    assert list(out["reward"]) == pytest.approx([1.5, 3.5, 5.0])
    assert list(curves.evaluations(metrics)["eval/accuracy"]) == [0.3, 0.4]


def test_cli_reads_a_committed_run(capsys):
    pocket = ROOT / "experiments" / "results" / "pocket"
    (run,) = [p for p in pocket.glob("*_s0") if p.name.split("_", 1)[1] == "rlvr_s0"]  # any job number
    curves.main([str(run), "--metrics", "reward,accuracy"])
    out = capsys.readouterr().out
    rows = pd.read_csv(run / "metrics.csv").dropna(subset=["train/reward"])
    assert f"{rows['train/reward'].iloc[:10].mean():.3f}" in out


def test_a_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit):
        curves.main([str(tmp_path / "nope")])
