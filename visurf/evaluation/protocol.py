"""The benchmark protocol's metrics, as the released evaluation code computes them (docs/evaluation.md).

The reference is VisionReasoner's evaluation: `evaluation/evaluation_segmentation.py` scores each
sample, `evaluation/calculate_iou_with_bbox_nonobj.py` sums a set. Per sample, the answer's mask
(every predicted object's mask OR-ed together) meets the label mask in an intersection and a union,
and the answer's boxes meet the label box in a hit (0/1). Over a set:

- gIoU: the mean of per-sample IoU, where an empty label answered with no boxes counts 1;
- cIoU: total intersection / total union;
- box hit rate: the mean hit at IoU > 0.5, by any one predicted box or by their merged box
  (the released code prints it as "bbox_AP");
- N-Acc: the empty labels answered with no boxes, over the empty labels.

Masks are boolean [H, W] arrays at the original image size; boxes are [x1, y1, x2, y2] lists in
original pixels. Everything here is pure numpy on values already mapped back to that size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visurf.evaluation.metrics import rasterise
from visurf.rewards.geometry import sort_corners

HIT_IOU = 0.5  # a box hits when its IoU with the label box exceeds this


@dataclass(frozen=True)
class Overlap:
    """One sample's mask (or box-region) overlap: pixel counts and its gIoU term."""

    intersection: int
    union: int
    iou: float  # intersection / union (0 when the union is empty), 1 for a right "nothing there"


def overlap(pred: np.ndarray, label: np.ndarray, right_empty: bool = False) -> Overlap:
    """The overlap of a predicted [H, W] mask with the label's.

    `right_empty`: the label mask is empty and the answer has no boxes. Such a sample counts 1
    in gIoU, whatever the masks (the released code's no-target rule); it adds 0 / 0 to cIoU.
    """
    if pred.shape != label.shape:
        raise ValueError(f"the predicted mask is {pred.shape} but the label mask is {label.shape}")
    intersection = int(np.logical_and(pred, label).sum())
    union = int(np.logical_or(pred, label).sum())
    if right_empty:
        return Overlap(intersection, union, 1.0)
    return Overlap(intersection, union, intersection / union if union else 0.0)


def box_iou(a, b) -> float:
    """IoU of two [x1, y1, x2, y2] boxes on continuous coordinates (no + 1), corners as given.

    The released rule: extents are x2 - x1 (a swapped box keeps a positive area but meets nothing),
    and a zero union gives 0.
    """
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return 0.0 if union == 0 else intersection / union


def merged_box(boxes: list) -> list | None:
    """The box spanning all `boxes` (least x1 and y1, greatest x2 and y2); None for no boxes."""
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def mask_box(mask: np.ndarray) -> list[int]:
    """[x_min, y_min, x_max, y_max] of the mask's pixels (inclusive indices); [] for an empty mask.

    The label box of a data set without a `bbox` column.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]


def box_hit(boxes: list, label_box: list | None) -> float:
    """1.0 when a predicted box, or the merged box of them all, has IoU > 0.5 with the label box.

    An empty label box (`[]`) is hit by an answer with no boxes. A null label box is never hit:
    the released code raises on it inside a guarded block that scores 0.
    """
    if label_box is None:
        return 0.0
    if len(label_box) == 0:
        return float(not boxes)
    if any(box_iou(box, label_box) > HIT_IOU for box in boxes):
        return 1.0
    merged = merged_box(boxes)
    return float(merged is not None and box_iou(merged, label_box) > HIT_IOU)


def box_region(boxes: list, height: int, width: int) -> np.ndarray:
    """Boolean [H, W] union of boxes as regions of the image (corners sorted, clipped): the
    box-level stand-in for a mask, when there is no segmenter."""
    return rasterise([sort_corners(list(map(float, b))) for b in boxes], width, height)


class _NoColumn:
    """The `bbox` argument of a data set without a `bbox` column (a null value is another case)."""

    def __repr__(self) -> str:
        return "NO_BBOX_COLUMN"


NO_BBOX_COLUMN = _NoColumn()


def label_box(mask: np.ndarray, bbox=NO_BBOX_COLUMN) -> list | None:
    """The box the hit is scored against: the row's `bbox`, or the mask's box without that column."""
    return mask_box(mask) if bbox is NO_BBOX_COLUMN else bbox


def label_region(mask: np.ndarray, bbox=NO_BBOX_COLUMN) -> np.ndarray:
    """The label box as a region of the image, for box-level overlap: the row's `bbox` (`[]`: none),
    else the mask's bounding rectangle, its extreme pixels included (also for a null `bbox`)."""
    if bbox is NO_BBOX_COLUMN or bbox is None:
        region = np.zeros(mask.shape, dtype=bool)
        box = mask_box(mask)
        if box:
            region[box[1] : box[3] + 1, box[0] : box[2] + 1] = True
        return region
    return box_region([bbox] if len(bbox) else [], *mask.shape)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def summarise(records: list[dict], levels: tuple[str, ...] = ("mask",)) -> dict:
    """The set's figures from per-sample records (`sample_record`'s keys).

    `levels`: "mask" gives `giou` and `ciou` (from SAM2's masks), "box" gives `box_giou` and
    `box_ciou` (from box regions). A ratio without a denominator is None (the released code
    prints 0 for a cIoU or N-Acc it cannot form).
    """
    n = len(records)
    no_target = sum(r["no_target"] for r in records)
    out: dict = {}
    for level in levels:
        prefix = "" if level == "mask" else "box_"
        out[f"{prefix}giou"] = _ratio(sum(r[f"{prefix}iou"] for r in records), n)
        out[f"{prefix}ciou"] = _ratio(
            sum(r[f"{prefix}intersection"] for r in records), sum(r[f"{prefix}union"] for r in records)
        )
    out["box_hit"] = _ratio(sum(r["box_hit"] for r in records), n)
    out["n_acc"] = _ratio(sum(r["no_target_correct"] for r in records), no_target)
    out["num_examples"] = n
    out["num_no_target"] = no_target
    return out


def sample_record(
    boxes: list, label_mask: np.ndarray, pred_mask: np.ndarray | None = None, bbox=NO_BBOX_COLUMN
) -> dict:
    """One sample's scores: the box hit and no-target counts, the box-level overlap, and the
    mask-level overlap when `pred_mask` (the segmenter's) is given.

    `boxes`: the answer's boxes in original pixels; `bbox`: the row's `bbox` value where the data
    set has that column (NO_BBOX_COLUMN where it has none).
    """
    no_target = not label_mask.any()
    right_empty = no_target and not boxes
    region = box_region(boxes, *label_mask.shape)
    boxes_overlap = overlap(region, label_region(label_mask, bbox), right_empty)
    record = {
        "box_hit": box_hit(boxes, label_box(label_mask, bbox)),
        "no_target": int(no_target),
        "no_target_correct": int(right_empty),
        "box_intersection": boxes_overlap.intersection,
        "box_union": boxes_overlap.union,
        "box_iou": boxes_overlap.iou,
    }
    if pred_mask is not None:
        mask_overlap = overlap(pred_mask, label_mask, right_empty)
        record |= {
            "intersection": mask_overlap.intersection,
            "union": mask_overlap.union,
            "iou": mask_overlap.iou,
        }
    return record
