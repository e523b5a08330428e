"""experiments/probes/regime_curves.py: evaluation accuracy per data group, and none-correct and
label-entered shares per window of training steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from experiments.probes import regime_curves as probe

COMMITTED = Path(__file__).resolve().parents[2] / "experiments" / "results" / "pocket_rebuilt"


def write_run(folder: Path) -> Path:
    (folder / "samples").mkdir(parents=True)
    before = [[0, "novel", 0.0], [1, "novel", 1.0], [2, "known", 1.0], [3, "novel", 0.0]]
    after = [[0, "novel", 1.0], [1, "novel", 1.0], [2, "known", 0.0], [3, "novel", 1.0]]
    (folder / "samples" / "outcomes_step00000.json").write_text(json.dumps(before))
    (folder / "samples" / "outcomes_step00004.json").write_text(json.dumps(after))
    lines = ["step,train/loss,train/group/novel/none_correct,train/group/novel/label_entered,eval/accuracy"]
    lines.append("0,,,,0.5")  # an evaluation row: no training values
    for step, (none, entered) in enumerate([(1.0, 1.0), (0.5, 0.0), ("", ""), (0.0, 1.0)]):
        lines.append(f"{step},0.1,{none},{entered},")
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_curves_and_windows_by_hand(tmp_path):
    run = write_run(tmp_path / "run")
    curve = probe.eval_curve(run)
    assert list(curve.index) == [0, 4]
    assert curve.loc[0, "novel"] == pytest.approx(1 / 3) and curve.loc[4, "novel"] == 1.0
    assert curve.loc[0, "known"] == 1.0 and curve.loc[4, "known"] == 0.0
    assert curve.loc[0, "all"] == 0.5 and curve.loc[4, "all"] == 0.75
    # questions 0 and 3 gained, 2 lost: three answers changed, though accuracy moved by one
    assert math.isnan(curve.loc[0, "changed"]) and curve.loc[4, "changed"] == 3
    other_questions = [[9, "novel", 1.0], [1, "novel", 1.0], [2, "known", 0.0], [3, "novel", 1.0]]
    assert math.isnan(probe.changed_answers([[0, "novel", 1.0], *other_questions[1:]], other_questions))

    windows = probe.train_windows(run, window=2)
    # steps 0-1: none-correct (1 + 0.5) / 2; steps 2-3: step 2 had no novel prompt (NaN), so 0.0
    assert windows.loc[0, "novel none_correct"] == 0.75 and windows.loc[2, "novel none_correct"] == 0.0
    assert windows.loc[0, "novel label_entered"] == 0.5 and windows.loc[2, "novel label_entered"] == 1.0
    text = probe.report([run], window=2)
    assert "| 0 | 4 | 0.500 | 1.000 | 0.333 |  |" in text and "| 4 | 4 | 0.750 | 0.000 | 1.000 | 3 |" in text
    assert "| 2 | 0.000 | 1.000 |" in text


def test_the_mean_over_an_objectives_runs_by_hand(tmp_path):
    first = write_run(tmp_path / "0_rlvr_s0")
    second = write_run(tmp_path / "1_rlvr_s1")
    csv = (second / "metrics.csv").read_text().replace("0,0.1,1.0,1.0,", "0,0.1,0.0,1.0,")
    (second / "metrics.csv").write_text(csv)  # seed 1's step 0: none-correct 0 instead of 1
    assert probe.objective_of(first) == "rlvr" and probe.objective_of(tmp_path / "x") == "x"
    [(name, (count, mean))] = probe.mean_windows(
        {run: probe.train_windows(run, window=2) for run in (first, second)}
    ).items()
    assert name == "rlvr" and count == 2
    # steps 0-1: seed 0 (1 + 0.5) / 2 = 0.75, seed 1 (0 + 0.5) / 2 = 0.25; their mean 0.5
    assert mean.loc[0, "novel none_correct"] == 0.5 and mean.loc[2, "novel none_correct"] == 0.0
    assert "### rlvr: mean over its 2 runs" in probe.report([first, second], window=2)


def test_a_committed_runs_curve_matches_its_summary():
    run = COMMITTED / "0_visurf_all_s0"
    summary = json.loads((run / "summary.json").read_text())
    curve = probe.eval_curve(run)
    for group, stats in summary["eval_before"]["groups"].items():
        assert curve.loc[0, group] == pytest.approx(stats["accuracy"]), group
    last = curve.index.max()
    assert curve.loc[last, "all"] == pytest.approx(summary["eval_after"]["accuracy"])
    windows = probe.train_windows(run, window=40)
    assert list(windows.index) == [0, 40, 80]
    assert all(0 <= v <= 1 for v in windows.to_numpy().ravel() if not math.isnan(v))


def test_a_run_without_evaluations_is_named(tmp_path):
    (tmp_path / "empty" / "samples").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="empty: no samples/outcomes_step"):
        probe.eval_curve(tmp_path / "empty")
    with pytest.raises(SystemExit):
        probe.main([str(tmp_path / "empty"), "--window", "0"])
