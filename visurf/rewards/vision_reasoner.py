"""`vision_reasoner`: the reward Seg-Zero and VisionReasoner train with, rule for rule.

The reference is `verl/utils/reward_score/vision_reasoner.py` in the Seg-Zero repository (its
`vision_reasoner_compute_score`). It is reproduced here as a behaviour, not copied: every value
below is the value the reference returns for the same completion and label, including where the
reference is surprising (each such rule is commented, and docs/rewards.md tables where it
differs from `grounding`). Thresholds are absolute pixels, as in the reference, whose images are
always 840 x 840: at another frame they are not rescaled.

Three things are visurf's own: every part runs in time linear in the completion (the reference's
regexes are quadratic on unclosed repeated tags); `correct`, which the reference does not have,
is the grounding reward's (so evaluation accuracy means the same under either reward); and the
no-target rule `empty_label`. The reference's IoU step raises on an empty label and its catch-all
scores every answer's accuracy 0 there, a right `[]` included (`empty_label="reference"`);
`"full"` (the default) gives a right `[]` the full accuracy of 3, as `grounding` does. The two
agree on every row with a target, so on the reference's own training data, which has none
without one.
"""

import re

import numpy as np
from scipy.optimize import linear_sum_assignment

from visurf.rewards.grounding import GroundingReward, check_size
from visurf.rewards.parsing import between, coerce_objects, parse_completion, safe_json
from visurf.rewards.registry import register_reward

IOU_THRESHOLD = 0.5  # IoU must exceed it
BOX_L1_THRESHOLD = 10.0  # mean absolute corner difference must be below it (pixels)
POINT_THRESHOLD = 30.0  # point distance must be below it (pixels)
MAX_OBJECTS = 120  # predictions and labels beyond the first 120 are ignored
# The accuracy of a right `[]` for an empty label: 0 as the reference scores it, or 3 in full.
EMPTY_LABEL_RULES = ("reference", "full")

_THINK_TO_ANSWER = re.compile(r"</think>\s*<answer>")
_OPEN, _CLOSE = "<answer>", "</answer>"


def think_format(text: str) -> float:
    """1 when the whole text is `<think>X</think>`, whitespace, `<answer>Y</answer>`, else 0.

    Nothing may surround it, not even whitespace or a newline; X and Y may hold anything,
    tags included, so a second think or answer block inside passes. (The reference fullmatches
    `<think>.*?</think>\\s*<answer>.*?</answer>`; this finds the same in one pass: the first
    `</think>`-whitespace-`<answer>` joint after the opening tag ends soonest, and it is enough
    that the closing `</answer>` is at or after its end.)
    """
    if not (text.startswith("<think>") and text.endswith(_CLOSE)):
        return 0.0
    joint = _THINK_TO_ANSWER.search(text, len("<think>"))
    return float(joint is not None and joint.end() <= len(text) - len(_CLOSE))


def answer_text(text: str) -> str | None:
    """Between the first `<answer>` and the first `</answer>` after it, whitespace stripped.

    The reference's `<answer>\\s*(.*?)\\s*</answer>` search, in linear time (Python's `\\s`
    and `str.strip` agree on what whitespace is).
    """
    inner = between(text, _OPEN, _CLOSE)
    return None if inner is None else inner.strip()


def _decode(answer: str | None):
    # The reference lets json.loads raise into its catch-all; NaN and Infinity are accepted.
    return safe_json(answer) if answer is not None else None


def answer_format(data) -> float:
    """Sum over elements of ((bbox_2d is a list of 4) + (point_2d is a list of 2)) / #elements.

    Only list lengths count: `[null, "a", NaN, [1]]` is a box. A decoded answer that is not a
    list scores 0, `[]` too. The reference scores element by element and stops at the first it
    cannot look into (a number, null, true, or a string or list that contains a key name),
    keeping what the earlier elements earned; a string or list without either key earns 0 and
    the scoring goes on.
    """
    if not isinstance(data, list):
        return 0.0
    score = 0.0
    for item in data:
        if not isinstance(item, dict):
            if isinstance(item, (str, list)) and "bbox_2d" not in item and "point_2d" not in item:
                continue
            break
        box, point = item.get("bbox_2d"), item.get("point_2d")
        earned = float(isinstance(box, list) and len(box) == 4) + float(
            isinstance(point, list) and len(point) == 2
        )
        score += earned / len(data)  # summed element by element, as the reference, to the last bit
    return score


def _pair_scores(boxes, points, label_boxes, label_points) -> np.ndarray:
    """[M, N] pair scores 0..3 (IoU hit + box-L1 hit + point hit); raises where the reference fails.

    Arrays are built from the JSON values as they are, so numpy's dtype rules apply as in the
    reference: bools mixed with numbers count as 0/1, integers past int64 make object arrays,
    strings or nulls fail. NaN compares false everywhere, so a NaN coordinate loses only the
    hits it takes part in.
    """
    pb, pp = np.array(boxes), np.array(points)
    gb, gp = np.array(label_boxes), np.array(label_points)
    if pb.ndim != 2 or pb.shape[1] != 4 or pp.shape != (len(pb), 2):
        raise ValueError("prediction arrays of the wrong shape")  # the reference's broadcasting fails too
    # IoU on inclusive pixel grids: every extent gets +1 (a box [x, y, x, y] is one pixel),
    # corners taken as given (a swapped box has a positive area but no intersection).
    a, b = pb[:, None, :], gb[None, :, :]
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    iou = inter / (area_a + area_b - inter)
    l1 = np.mean(np.abs(a - b), axis=2)
    distance = np.sqrt(np.sum((pp[:, None, :] - gp[None, :, :]) ** 2, axis=2))
    # The point must lie in its own predicted box, edges included (no corner sorting).
    inside = (pp[:, 0] >= pb[:, 0]) & (pp[:, 0] <= pb[:, 2]) & (pp[:, 1] >= pb[:, 1]) & (pp[:, 1] <= pb[:, 3])
    hits = (iou > IOU_THRESHOLD).astype(float) + (l1 < BOX_L1_THRESHOLD).astype(float)
    return hits + ((distance < POINT_THRESHOLD) & inside[:, None]).astype(float)


def accuracy(data, labels: list) -> float:
    """Best one-to-one matching's summed pair scores / max(#pred, #label), in [0, 3].

    Zero, as the reference's catch-all makes it, when the answer is not a non-empty list of
    objects that all have both keys (one malformed element zeroes the whole answer), when the
    label is empty (so a right `[]` earns no accuracy), or when the coordinates cannot be
    computed with (wrong lengths, strings, nulls).
    """
    if not isinstance(data, list) or not data or not labels:
        return 0.0  # the reference's array code fails on an empty list
    if not all(isinstance(item, dict) and "bbox_2d" in item and "point_2d" in item for item in data):
        return 0.0
    data, labels = data[:MAX_OBJECTS], labels[:MAX_OBJECTS]
    try:
        with np.errstate(all="ignore"):  # inf - inf and 0 / 0 give NaN, which scores nothing
            scores = _pair_scores(
                [item["bbox_2d"] for item in data],
                [item["point_2d"] for item in data],
                [label["bbox_2d"] for label in labels],
                [label["point_2d"] for label in labels],
            )
        rows, cols = linear_sum_assignment(scores, maximize=True)
    except Exception:  # any failure scores 0, as in the reference
        return 0.0
    return float(scores[rows, cols].sum()) / max(len(data), len(labels))


def non_repeat(text: str) -> float:
    """0 when the whole completion (tags and answer included) repeats sentences twice or more.

    Sentences are split at '.' only (so "10.5" splits), stripped, compared case-sensitively;
    "repeats" counts sentences equal to an earlier one: one repeat still earns 1.
    """
    sentences = [s for s in (part.strip() for part in text.split(".")) if s]
    return 0.0 if len(sentences) - len(set(sentences)) >= 2 else 1.0


@register_reward("vision_reasoner")
class VisionReasonerReward:
    """The reference reward: think format (0/1) + answer format (0-2) + accuracy (0-3) + non-repeat (0/1).

    `empty_label`: "full" (default) scores a right `[]` for an empty label accuracy 3;
    "reference" scores it 0, as the public code does (module docstring, docs/rewards.md).
    """

    components = ("think_format", "answer_format", "accuracy", "non_repeat")
    max_total = 7.0

    def __init__(self, empty_label: str = "full"):
        if empty_label not in EMPTY_LABEL_RULES:
            raise ValueError(f"empty_label must be one of {list(EMPTY_LABEL_RULES)}, got {empty_label!r}")
        self.empty_label = empty_label
        self._grounding = GroundingReward()  # for `correct` only

    def __call__(self, completion: str, solution, width: int, height: int) -> dict[str, float]:
        labels = coerce_objects(solution)
        if labels is None:
            raise ValueError(f"malformed grounding label: {solution!r:.200}")
        check_size(width, height)
        # The label's own numbers (ints stay ints), as the reference reads its JSON label.
        raw_labels = safe_json(solution) if isinstance(solution, str) else solution
        scores = dict.fromkeys(self.components, 0.0)
        correct = 0.0
        if isinstance(completion, str):
            try:
                data = _decode(answer_text(completion))
                scores["think_format"] = think_format(completion)
                scores["answer_format"] = answer_format(data)
                scores["accuracy"] = accuracy(data, raw_labels)
                if self.empty_label == "full" and data == [] and not raw_labels:
                    scores["accuracy"] = 3.0  # a right "nothing there"
                scores["non_repeat"] = non_repeat(completion)
                objects = parse_completion(completion).objects
                correct = self._grounding.accuracy(objects, labels, width, height)[1]
            except Exception:  # last resort: the reward must never stop training
                pass
        return {**scores, "total": sum(scores.values()), "correct": correct}
