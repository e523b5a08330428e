"""The visual-grounding reward of DESIGN §3: think format + answer format + accuracy + non-repeat."""

import math
import re

import numpy as np
from scipy.optimize import linear_sum_assignment

from visurf.rewards.geometry import distance, inside, iou, mean_l1, sort_corners
from visurf.rewards.parsing import as_coords, coerce_objects, parse_completion
from visurf.rewards.registry import register_reward

# Sentence ends; a '.' between two digits is a decimal point ("10.5"), not a sentence end.
_SENTENCE_END = re.compile(r"[!?\n]|(?<!\d)\.|\.(?!\d)")


def answer_format_score(objects: list | None, labels: list) -> float:
    """Mean over elements of (bbox_2d is 4 numbers) + (point_2d is 2 numbers).

    `[]` has no box or point to score: 0 (as in VisionReasoner's reward), unless the label is
    empty too, where a right "nothing there" earns in full, as a right box does (DESIGN §3).
    Were a wrong `[]` scored 2, it would earn what a wrong box earns, a free guess that RL
    collapses onto (greedy `[]` on known questions 0.06 -> 0.34 in 60 steps of the main job).
    """
    if not objects:
        return 2.0 if objects == [] and not labels else 0.0
    total = 0
    for item in objects:
        if isinstance(item, dict):
            total += as_coords(item.get("bbox_2d"), 4) is not None
            total += as_coords(item.get("point_2d"), 2) is not None
    return total / len(objects)


def well_formed(objects: list) -> list[dict]:
    """Predicted objects with a finite box and point; boxes corner-sorted (swaps are forgiven)."""
    kept = []
    for item in objects:
        if not isinstance(item, dict):
            continue
        box, point = as_coords(item.get("bbox_2d"), 4), as_coords(item.get("point_2d"), 2)
        if box is not None and point is not None:
            kept.append({"bbox_2d": sort_corners(box), "point_2d": point})
    return kept


def repeats_sentence(think: str | None) -> bool:
    if think is None:
        return False
    sentences = [s.strip().lower() for s in _SENTENCE_END.split(think)]
    sentences = [s for s in sentences if s]
    return len(sentences) != len(set(sentences))


@register_reward("grounding")
class GroundingReward:
    """Scores a grounding completion against the label objects (same pixel frame)."""

    components = ("think_format", "answer_format", "accuracy", "non_repeat")
    max_total = 7.0

    def __init__(
        self,
        box_l1_threshold: float = 10.0,
        point_threshold: float = 100.0,
        iou_threshold: float = 0.5,
        reference_frame: float = 840.0,
    ):
        self.box_l1_threshold = float(box_l1_threshold)
        self.point_threshold = float(point_threshold)
        self.iou_threshold = float(iou_threshold)
        self.reference_frame = float(reference_frame)

    def _pair(self, pred: dict, label: dict, scale: float) -> tuple[int, bool, float, float]:
        """(score 0..3, IoU hit, IoU, mean L1) for one prediction/label pair."""
        overlap = iou(pred["bbox_2d"], label["bbox_2d"])
        l1 = mean_l1(pred["bbox_2d"], label["bbox_2d"])
        iou_hit = overlap > self.iou_threshold
        near = distance(pred["point_2d"], label["point_2d"]) < self.point_threshold * scale
        point_hit = near and inside(pred["point_2d"], pred["bbox_2d"])
        return int(iou_hit) + int(l1 < self.box_l1_threshold * scale) + int(point_hit), iou_hit, overlap, l1

    def _match(self, preds: list[dict], labels: list[dict], scale: float, frame: float) -> list[tuple]:
        """Hungarian matching; returns the `_pair` tuples of the chosen pairs.

        Cost = -(pair score 0..3) + tie-break, tie-break = (1 - IoU + min(L1/frame, 1)) / (2(k+1))
        with k = min(#pred, #label): the tie-breaks of a whole assignment sum to < 1, so the
        assignment maximises the integer reward exactly, and among equal-reward assignments
        prefers the better-overlapping, closer boxes.
        """
        pairs = [[self._pair(p, g, scale) for g in labels] for p in preds]
        weight = 1.0 / (2 * (min(len(preds), len(labels)) + 1))
        cost = np.empty((len(preds), len(labels)))
        for i, row in enumerate(pairs):
            for j, (score, _, overlap, l1) in enumerate(row):
                closeness = min(l1 / frame, 1.0)  # l1 may be inf, never NaN
                cost[i, j] = -score + weight * (1.0 - overlap + closeness)
        rows, cols = linear_sum_assignment(cost)
        return [pairs[i][j] for i, j in zip(rows, cols)]

    def accuracy(self, objects: list | None, labels: list[dict], width: int, height: int):
        """(accuracy in [0, 3], correct in {0, 1})."""
        if objects is None:
            return 0.0, 0.0
        if not objects and not labels:
            return 3.0, 1.0  # a correct "nothing there" earns full marks
        preds = well_formed(objects)
        if not preds or not labels:
            return 0.0, 0.0
        frame = float(max(width, height))
        matched = self._match(preds, labels, frame / self.reference_frame, frame)
        score = sum(m[0] for m in matched) / max(len(objects), len(labels))
        correct = len(objects) == len(preds) == len(labels) and all(m[1] for m in matched)
        return float(score), float(correct)

    def __call__(self, completion: str, solution, width: int, height: int) -> dict[str, float]:
        labels = coerce_objects(solution)
        if labels is None:
            raise ValueError(f"malformed grounding label: {solution!r:.200}")
        if not (math.isfinite(max(width, height)) and max(width, height) > 0):
            raise ValueError(f"image size must be positive, got {width}x{height}")
        scores = dict.fromkeys(self.components, 0.0)
        correct = 0.0
        try:
            parsed = parse_completion(completion)
            scores["think_format"] = float(parsed.strict_format)
            scores["answer_format"] = answer_format_score(parsed.objects, labels)
            scores["non_repeat"] = float(not repeats_sentence(parsed.think))
            scores["accuracy"], correct = self.accuracy(parsed.objects, labels, width, height)
        except Exception:  # last resort: the reward must never stop training
            pass
        return {**scores, "total": sum(scores.values()), "correct": correct}
