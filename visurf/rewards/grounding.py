"""The visual-grounding reward: think format + answer format + accuracy + non-repeat (docs/rewards.md)."""

import math
import re

import numpy as np
from scipy.optimize import linear_sum_assignment

from visurf.rewards.geometry import (
    pairwise_distance,
    pairwise_iou,
    pairwise_mean_l1,
    rows_inside,
)
from visurf.rewards.parsing import as_coords, coerce_objects, is_image_index, parse_completion
from visurf.rewards.registry import register_reward

# Sentence ends; a '.' between two digits is a decimal point ("10.5"), not a sentence end.
_SENTENCE_END = re.compile(r"[!?\n]|(?<!\d)\.|\.(?!\d)")


def read_elements(objects: list) -> list[tuple[list[float] | None, list[float] | None]]:
    """(box, point) of each predicted element: 4 / 2 finite numbers, else None (read once, used twice)."""
    out = []
    for item in objects:
        if isinstance(item, dict):
            out.append((as_coords(item.get("bbox_2d"), 4), as_coords(item.get("point_2d"), 2)))
        else:
            out.append((None, None))
    return out


def answer_format_score(
    objects: list | None, labels: list, elements: list | None = None, empty_list: str = "when_right"
) -> float:
    """Mean over elements of (bbox_2d is 4 numbers) + (point_2d is 2 numbers).

    `[]` has no box or point to score. `empty_list="when_right"`: 0 (as in VisionReasoner's
    reward) unless the label is empty too, where a right "nothing there" earns in full, as a
    right box does. `"always"`: a `[]` is a well-formed list and earns in full, so the format
    term pays nothing for choosing a box over `[]` and that choice rests on accuracy alone.
    """
    if not objects:
        earns = objects == [] and (empty_list == "always" or not labels)
        return 2.0 if earns else 0.0
    elements = read_elements(objects) if elements is None else elements
    total = sum((box is not None) + (point is not None) for box, point in elements)
    return total / len(objects)


def well_formed(elements: list) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [K, 4] and points [K, 2] of the elements with a finite box and point; boxes
    corner-sorted (a swapped-corner box covers the same pixels, so swaps are forgiven)."""
    kept = [(box, point) for box, point in elements if box is not None and point is not None]
    boxes = np.array([box for box, _ in kept], dtype=np.float64).reshape(-1, 4)
    points = np.array([point for _, point in kept], dtype=np.float64).reshape(-1, 2)
    sorted_boxes = np.concatenate(
        [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1
    )
    return sorted_boxes, points


def repeats_sentence(think: str | None) -> bool:
    if think is None:
        return False
    sentences = [s.strip().lower() for s in _SENTENCE_END.split(think)]
    sentences = [s for s in sentences if s]
    return len(sentences) != len(set(sentences))


@register_reward("grounding")
class GroundingReward:
    """Scores a grounding completion against the label objects (same pixel frame).

    Thresholds are for an 840-pixel frame and scale with the image's longest side. The defaults
    are the reference reward's (box L1 10, point 30; docs/rewards.md); a preset that needs looser
    ones sets them in its model config (`reward_kwargs.grounding`, as conf/model/tiny_base.yaml).
    """

    components = ("think_format", "answer_format", "accuracy", "non_repeat")
    max_total = 7.0

    def __init__(
        self,
        box_l1_threshold: float = 10.0,
        point_threshold: float = 30.0,
        iou_threshold: float = 0.5,
        reference_frame: float = 840.0,
        empty_list_format: str = "when_right",
    ):
        if empty_list_format not in ("when_right", "always"):
            raise ValueError(f"empty_list_format must be 'when_right' or 'always', got {empty_list_format!r}")
        self.empty_list_format = empty_list_format
        self.box_l1_threshold = float(box_l1_threshold)
        self.point_threshold = float(point_threshold)
        self.iou_threshold = float(iou_threshold)
        self.reference_frame = float(reference_frame)

    def _match(
        self, boxes, points, labels: list[dict], scale: float, frame: float, images=None
    ) -> list[tuple]:
        """Hungarian matching of predicted boxes [M, 4] and points [M, 2] to the labels; returns
        (score 0..3, IoU hit) of each chosen pair.

        A pair scores IoU > iou_threshold, mean box L1 < box_l1_threshold, and point near the
        label point and inside the predicted box, one each. Cost = -(pair score) + tie-break,
        tie-break = (1 - IoU + min(L1/frame, 1)) / (2(k+1)) with k = min(#pred, #label): the
        tie-breaks of a whole assignment sum to < 1, so the assignment maximises the integer
        reward exactly, and among equal-reward assignments prefers the better-overlapping,
        closer boxes.

        `images`: the image index [M] of each prediction, for labels that name theirs (a row
        with several images): a prediction pairs only with a label object in its own image.
        """
        label_boxes = np.array([g["bbox_2d"] for g in labels], dtype=np.float64)
        label_points = np.array([g["point_2d"] for g in labels], dtype=np.float64)
        overlap = pairwise_iou(boxes, label_boxes)
        l1 = pairwise_mean_l1(boxes, label_boxes)  # may be inf, never NaN
        iou_hit = overlap > self.iou_threshold
        near = pairwise_distance(points, label_points) < self.point_threshold * scale
        point_hit = near & rows_inside(points, boxes)[:, None]
        score = iou_hit.astype(int) + (l1 < self.box_l1_threshold * scale) + point_hit
        if images is not None:
            same = np.asarray(images)[:, None] == np.array([g.get("image", 0) for g in labels])[None, :]
            score, iou_hit = score * same, iou_hit & same
        weight = 1.0 / (2 * (min(len(boxes), len(labels)) + 1))
        cost = -score + weight * (1.0 - overlap + np.minimum(l1 / frame, 1.0))
        rows, cols = linear_sum_assignment(cost)
        return [(int(score[i, j]), bool(iou_hit[i, j])) for i, j in zip(rows, cols)]

    def accuracy(self, objects: list | None, labels: list[dict], width: int, height: int, elements=None):
        """(accuracy in [0, 3], correct in {0, 1}); `elements`: `read_elements(objects)` if at hand."""
        if objects is None:
            return 0.0, 0.0
        if not objects and not labels:
            return 3.0, 1.0  # a correct "nothing there" earns full marks
        elements = read_elements(objects) if elements is None else elements
        boxes, points = well_formed(elements)
        if not len(boxes) or not labels:
            return 0.0, 0.0
        frame = float(max(width, height))
        images = None
        if any("image" in g for g in labels):  # several images: each object in its own
            images = [
                _image_index(obj)
                for obj, (box, point) in zip(objects, elements)
                if box is not None and point is not None
            ]
        matched = self._match(boxes, points, labels, frame / self.reference_frame, frame, images)
        score = sum(m[0] for m in matched) / max(len(objects), len(labels))
        correct = len(objects) == len(boxes) == len(labels) and all(m[1] for m in matched)
        return float(score), float(correct)

    def __call__(self, completion: str, solution, width: int, height: int) -> dict[str, float]:
        labels = coerce_objects(solution)
        if labels is None:
            raise ValueError(f"malformed grounding label: {solution!r:.200}")
        check_size(width, height)
        scores = dict.fromkeys(self.components, 0.0)
        correct = 0.0
        try:
            parsed = parse_completion(completion)
            elements = read_elements(parsed.objects) if parsed.objects else []
            scores["think_format"] = float(parsed.strict_format)
            scores["answer_format"] = answer_format_score(
                parsed.objects, labels, elements, self.empty_list_format
            )
            scores["non_repeat"] = float(not repeats_sentence(parsed.think))
            scores["accuracy"], correct = self.accuracy(parsed.objects, labels, width, height, elements)
        except Exception:  # last resort: the reward must never stop training
            pass
        return {**scores, "total": sum(scores.values()), "correct": correct}


def _image_index(obj) -> int:
    """The image a predicted object names (`"image": k`), 0 where it names none, -1 (matching no
    label) where what it names is not an index."""
    k = obj.get("image", 0) if isinstance(obj, dict) else 0
    return k if is_image_index(k) else -1


def check_size(width, height) -> None:
    if not (math.isfinite(max(width, height)) and max(width, height) > 0):
        raise ValueError(f"image size must be positive, got {width}x{height}")
