"""experiments/probes/train_accuracy_thirds.py: training accuracy by parts of a run, at the evaluation split's group mix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from experiments.probes import train_accuracy_thirds as probe

COMMITTED = Path(__file__).resolve().parents[2] / "experiments" / "results" / "base_builds"


def write_run(folder: Path, accuracy: list[float], known: list[float], novel: list[float]) -> Path:
    """A run directory with a metrics.csv of these steps (an evaluation row between them) and a
    summary.json whose evaluation split has 3 known questions to 1 novel one."""
    folder.mkdir(parents=True)
    lines = ["step,train/accuracy,train/group/known/accuracy,train/group/novel/accuracy,eval/accuracy"]
    lines.append("0,,,,0.5")
    for step, (a, k, n) in enumerate(zip(accuracy, known, novel)):
        cells = ["" if math.isnan(x) else str(x) for x in (a, k, n)]
        lines.append(",".join([str(step), *cells, ""]))  # no eval/accuracy on a training row
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    groups = {"known": {"accuracy": 0.6, "num_examples": 3}, "novel": {"accuracy": 0.2, "num_examples": 1}}
    after = {"known": {"accuracy": 0.7, "num_examples": 3}, "novel": {"accuracy": 0.3, "num_examples": 1}}
    summary = {
        "eval_before": {"accuracy": 0.5, "groups": groups},
        "eval_after": {"accuracy": 0.6, "groups": after},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_parts_and_the_fixed_mix_by_hand(tmp_path):
    nan = math.nan
    a = write_run(
        tmp_path / "a",
        accuracy=[0.2, 0.4, 0.3, 0.3, 0.5, 0.7],
        known=[0.4, 0.6, 0.5, nan, 0.8, 1.0],
        novel=[0.0, 0.2, nan, 0.1, 0.3, 0.5],
    )
    b = write_run(
        tmp_path / "b",
        accuracy=[0.3] * 6,
        known=[0.5] * 6,
        novel=[0.1] * 6,
    )
    out = probe.main([str(a), str(b), "--out", str(tmp_path / "t.json")])
    parts = out["runs"][str(a)]["parts"]
    assert out["runs"][str(a)]["mix"] == {"known": 0.75, "novel": 0.25}
    assert [p["steps"] for p in parts] == [[0, 1], [2, 3], [4, 5]]
    assert parts[0]["raw"] == pytest.approx(0.3)
    assert parts[0]["raw_se"] == pytest.approx(0.1)  # sd 0.1414 over 2 steps
    # the middle part: known only at step 2, novel only at step 3 (NaN steps are left out)
    known = parts[1]["groups"]["known"]
    assert (known["accuracy"], known["steps"]) == (pytest.approx(0.5), 1) and math.isnan(known["se"])
    assert parts[1]["groups"]["novel"]["steps"] == 1
    assert parts[0]["fixed_mix"] == pytest.approx(0.75 * 0.5 + 0.25 * 0.1)
    assert parts[2]["fixed_mix"] == pytest.approx(0.75 * 0.9 + 0.25 * 0.4)
    assert parts[2]["fixed_mix_se"] == pytest.approx(math.hypot(0.75 * 0.1, 0.25 * 0.1))
    assert out["runs"][str(a)]["greedy"] == {"all": [0.5, 0.6], "known": [0.6, 0.7], "novel": [0.2, 0.3]}
    # pooled over the two runs: a rises 0.3 (fixed mix: 0.775 - 0.4 = 0.375), b is flat
    pooled = out["last_minus_first"]
    assert pooled["raw"]["mean"] == pytest.approx(0.3 / 2)
    assert pooled["fixed_mix"]["mean"] == pytest.approx(0.375 / 2)
    assert pooled["fixed_mix"]["sd"] == pytest.approx(0.375 / math.sqrt(2))
    assert pooled["known"]["runs"] == 2 and pooled["multi"]["runs"] == 0
    assert json.loads((tmp_path / "t.json").read_text())["runs"][str(b)]["parts"][0]["raw"] == pytest.approx(
        0.3
    )


def test_the_committed_runs_read_in_thirds():
    runs = sorted(COMMITTED.glob("*/1-0/s*"))
    assert runs, f"no committed runs under {COMMITTED}"
    out = probe.main([str(r) for r in runs])
    for result in out["runs"].values():
        assert sum(result["mix"].values()) == pytest.approx(1.0)
        parts = result["parts"]
        assert [p["num_steps"] for p in parts] == [27, 27, 26]  # 80 steps
        for p in parts:
            assert 0.0 <= p["fixed_mix"] <= 1.0 and 0.0 <= p["raw"] <= 1.0
    assert out["last_minus_first"]["fixed_mix"]["runs"] == len(runs)


def test_bad_input_ends_in_one_line_naming_it(tmp_path, capsys):
    run = write_run(tmp_path / "r", [0.1, 0.2], [0.1, 0.2], [0.1, 0.2])
    for argv, says in [
        ([str(tmp_path / "none")], "has no metrics.csv"),
        ([str(run), "--parts", "3"], "fewer than --parts 3"),
        ([str(run), "--parts", "0"], "--parts must be >= 1"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            probe.main(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("train_accuracy_thirds.py: ") and says in err
