"""The benchmark protocol's metrics against hand-worked masks and boxes (visurf.evaluation.protocol)."""

from __future__ import annotations

import numpy as np
import pytest

from visurf.evaluation.protocol import (
    NO_BBOX_COLUMN,
    box_hit,
    box_iou,
    mask_box,
    merged_box,
    overlap,
    sample_record,
    summarise,
)


def mask(height: int, width: int, *rects) -> np.ndarray:
    """A boolean mask with the pixels of each (row0, row1, col0, col1) rectangle set (ends excluded)."""
    out = np.zeros((height, width), dtype=bool)
    for r0, r1, c0, c1 in rects:
        out[r0:r1, c0:c1] = True
    return out


def test_mask_overlap_counts_pixels():
    # Prediction: rows 0-1, cols 0-3 (8 px). Label: rows 1-2, cols 2-5 (8 px). Shared: row 1, cols 2-3 (2 px).
    pred, label = mask(4, 6, (0, 2, 0, 4)), mask(4, 6, (1, 3, 2, 6))
    result = overlap(pred, label)
    assert (result.intersection, result.union) == (2, 14)
    assert result.iou == pytest.approx(2 / 14)


def test_an_empty_label_answered_with_nothing_counts_one_and_adds_nothing_to_ciou():
    empty = mask(4, 6)
    result = overlap(empty, empty, right_empty=True)
    assert (result.intersection, result.union, result.iou) == (0, 0, 1.0)
    # Without the no-target rule, the released per-sample IoU of 0 / 0 is 0.
    assert overlap(empty, empty).iou == 0.0


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(4, 6\) but the label mask is \(6, 4\)"):
        overlap(mask(4, 6), mask(6, 4))


def test_box_iou_is_the_released_rule():
    # Half-overlapping 10 x 10 boxes: 50 / (100 + 100 - 50).
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    # No + 1 on extents: a 10 x 5 box inside a 10 x 10 one is exactly 0.5.
    assert box_iou([0, 0, 10, 5], [0, 0, 10, 10]) == 0.5
    # Corners as given: a swapped box has area 100 but meets nothing.
    assert box_iou([10, 10, 0, 0], [0, 0, 10, 10]) == 0.0
    # Two degenerate boxes: zero union gives 0.
    assert box_iou([5, 5, 5, 5], [5, 5, 5, 5]) == 0.0


def test_box_hit_by_any_box_or_by_the_merged_box():
    label = [0, 0, 20, 10]
    # Each half alone has IoU exactly 0.5 (not a hit: the rule is > 0.5); merged they cover it.
    halves = [[0, 0, 10, 10], [10, 0, 20, 10]]
    assert [box_iou(b, label) for b in halves] == [0.5, 0.5]
    assert merged_box(halves) == [0, 0, 20, 10]
    assert box_hit(halves, label) == 1.0
    # One good box among bad ones hits; the merged box of them does not matter then.
    assert box_hit([[100, 100, 120, 120], [1, 0, 20, 10]], label) == 1.0
    # Only bad boxes, merged box too large: IoU 200 / 14400.
    assert box_hit([[100, 100, 120, 120], [0, 0, 5, 5]], label) == 0.0
    assert box_hit([], label) == 0.0
    assert merged_box([]) is None


def test_box_hit_on_empty_and_null_label_boxes():
    assert box_hit([], []) == 1.0  # nothing there, nothing answered
    assert box_hit([[0, 0, 5, 5]], []) == 0.0
    # A null bbox raises inside the released code's guarded block, which scores 0 either way.
    assert box_hit([], None) == 0.0 and box_hit([[0, 0, 5, 5]], None) == 0.0


def test_mask_box_takes_inclusive_extremes():
    # Pixels in rows 2-5 and cols 3-8.
    assert mask_box(mask(10, 12, (2, 6, 3, 9))) == [3, 2, 8, 5]
    assert mask_box(mask(10, 12, (0, 1, 0, 1), (9, 10, 11, 12))) == [0, 0, 11, 9]
    assert mask_box(mask(10, 12)) == []


def test_sample_record_without_a_bbox_column():
    label = mask(10, 12, (2, 6, 3, 9))  # 4 rows x 6 cols = 24 px
    pred = mask(10, 12, (2, 6, 3, 6))  # the left half: 12 px
    record = sample_record([[3, 2, 8, 5]], label, pred)
    # The hit is scored against the mask's box [3, 2, 8, 5]: the same box, IoU 1.
    assert record["box_hit"] == 1.0
    assert (record["intersection"], record["union"], record["iou"]) == (12, 24, 0.5)
    assert (record["no_target"], record["no_target_correct"]) == (0, 0)
    # Box level: the predicted box covers rows 2-4 and cols 3-7 (15 px, positions not pixel
    # indices); the label region is the mask's rectangle, its extreme pixels included (24 px).
    assert (record["box_intersection"], record["box_union"]) == (15, 24)
    assert record["box_iou"] == pytest.approx(15 / 24)


def test_sample_record_with_a_bbox_column():
    label = mask(10, 12, (2, 6, 3, 9))
    record = sample_record([[0, 0, 4, 4]], label, bbox=[0, 0, 4, 4])
    assert record["box_hit"] == 1.0 and "iou" not in record  # no segmenter: no mask-level keys
    assert (record["box_intersection"], record["box_union"], record["box_iou"]) == (16, 16, 1.0)


def test_sample_records_of_empty_labels():
    empty = mask(10, 12)
    # Nothing answered: counts 1 in gIoU, 0 / 0 in cIoU, a hit and a right no-target answer.
    right = sample_record([], empty, mask(10, 12), bbox=[])
    assert (right["iou"], right["intersection"], right["union"]) == (1.0, 0, 0)
    assert (right["box_iou"], right["box_hit"]) == (1.0, 1.0)
    assert (right["no_target"], right["no_target_correct"]) == (1, 1)
    # A box answered, its mask 6 px: IoU 0, and its area enlarges cIoU's denominator.
    wrong = sample_record([[0, 0, 3, 2]], empty, mask(10, 12, (0, 2, 0, 3)), bbox=[])
    assert (wrong["iou"], wrong["intersection"], wrong["union"]) == (0.0, 0, 6)
    assert (wrong["box_union"], wrong["box_hit"], wrong["no_target_correct"]) == (6, 0.0, 0)
    # A box answered whose mask came out empty: union 0, IoU 0, still a wrong no-target answer.
    blank = sample_record([[0, 0, 3, 2]], empty, mask(10, 12), bbox=NO_BBOX_COLUMN)
    assert (blank["iou"], blank["union"], blank["no_target_correct"]) == (0.0, 0, 0)
    # A target missed: IoU 0 with the label's whole area as the union.
    missed = sample_record([], mask(10, 12, (0, 2, 0, 2)), mask(10, 12))
    assert (missed["iou"], missed["intersection"], missed["union"], missed["box_hit"]) == (0.0, 0, 4, 0.0)


def test_summarise_a_set():
    empty = mask(10, 12)
    records = [
        sample_record([], empty, mask(10, 12), bbox=[]),  # right no-target: IoU 1, 0/0
        sample_record([[0, 0, 3, 2]], empty, mask(10, 12, (0, 2, 0, 3)), bbox=[]),  # wrong: 0/6
        sample_record(
            [[3, 2, 6, 6]], mask(10, 12, (2, 6, 3, 9)), mask(10, 12, (2, 6, 3, 6)), bbox=[3, 2, 9, 6]
        ),
        sample_record([], mask(10, 12, (0, 2, 0, 2)), mask(10, 12), bbox=[0, 0, 2, 2]),  # missed: 0/4
    ]
    # Third: 12 / 24 = 0.5 and box IoU 12 / 24 = 0.5, not a hit.
    assert records[2]["iou"] == 0.5 and records[2]["box_hit"] == 0.0
    figures = summarise(records, levels=("mask", "box"))
    assert figures["giou"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert figures["ciou"] == pytest.approx((0 + 0 + 12 + 0) / (0 + 6 + 24 + 4))
    assert figures["box_giou"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert figures["box_ciou"] == pytest.approx(12 / 34)
    assert figures["box_hit"] == 0.25  # the right no-target answer only
    assert figures["n_acc"] == 0.5  # one of two empty labels answered with nothing
    assert (figures["num_examples"], figures["num_no_target"]) == (4, 2)


def test_ratios_without_a_denominator_are_none():
    target = sample_record([], mask(4, 4, (0, 1, 0, 1)))
    assert summarise([target], levels=("box",))["n_acc"] is None  # no empty labels
    right_empty = sample_record([], mask(4, 4), mask(4, 4))
    figures = summarise([right_empty])
    assert figures["ciou"] is None and figures["giou"] == 1.0 and figures["n_acc"] == 1.0
    assert summarise([])["giou"] is None and summarise([])["num_examples"] == 0
