"""The benchmark table: rows in the papers' order, percentages, box-level rows labelled."""

from __future__ import annotations

import pytest

from visurf.analysis.benchmarks import main, markdown, rows

MASKS = {
    "level": "mask",
    "giou": 0.61234,
    "ciou": 0.5,
    "box_giou": 0.9,
    "box_ciou": 0.9,
    "box_hit": 0.75,
    "n_acc": None,
    "num_examples": 200,
}
BOXES = {"level": "box", "box_giou": 0.4, "box_ciou": 0.25, "box_hit": 0.5, "n_acc": 0.875, "num_examples": 8}


def test_rows_follow_the_papers_order_and_label_box_level_figures():
    table = rows({"mine": BOXES, "grefcoco_val_all": BOXES, "ReasonSeg_test": MASKS, "ReasonSeg_val": MASKS})
    assert [r["benchmark"] for r in table] == ["ReasonSeg_val", "ReasonSeg_test", "grefcoco_val_all", "mine"]
    assert table[0] == {
        "benchmark": "ReasonSeg_val",
        "gIoU": 61.2,
        "cIoU": 50.0,
        "hit@0.5": 75.0,
        "N-Acc": None,
        "masks": "sam2",
        "samples": 200,
    }
    assert table[2] | {"benchmark": "x"} == {
        "benchmark": "x",
        "gIoU": 40.0,
        "cIoU": 25.0,
        "hit@0.5": 50.0,
        "N-Acc": 87.5,
        "masks": "box",
        "samples": 8,
    }
    text = markdown(table)
    assert "| ReasonSeg_val | 61.2 | 50.0 | 75.0 | — | sam2 | 200 |" in text
    assert text.rstrip().endswith("gIoU and cIoU are box-level (box regions, not SAM2 masks).")
    assert "box-level" not in markdown(table[:2])


def test_usage_and_missing_results_end_with_one_line(tmp_path, capsys):
    for argv, message in (
        (["tabel", "x"], "usage:"),
        (["table", str(tmp_path)], "no evaluation-set results"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
