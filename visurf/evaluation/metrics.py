"""Evaluation metrics as torchmetrics `Metric`s, by name: `grounding` (box level, gRefCOCO-style
gIoU, cIoU, N-Acc) and `answer` (accuracy of an answer text: counts, choices, numbers). A
reward names the one that evaluates its rows (`metric`, "grounding" where it says nothing).

All state lives in one sum-reduced tensor, so a metric reduces across processes (DDP sync or
`merge_state`) by plain addition; ratios are only formed in `compute`.
"""

import math

import numpy as np
import torch
from torchmetrics import Metric

from visurf.config.registry import Registry
from visurf.data.groups import GROUPS
from visurf.rewards.geometry import sort_corners
from visurf.rewards.parsing import as_coords, is_image_index, parse_completion, safe_json

METRICS = Registry("evaluation metric")
register_metric = METRICS.register


def metric_for(reward):
    """A fresh metric of the kind that evaluates `reward`'s rows (its `metric`, else grounding)."""
    return METRICS.get(getattr(reward, "metric", "grounding"))()


FIELDS = (
    "n",
    "correct",
    "reward",
    "format",
    "strict_format",
    "giou_sum",
    "inter",
    "union",
    "n_nonobj",
    "nonobj_correct",
    "think_words",
)
_COL = {name: i for i, name in enumerate(FIELDS)}  # column of each field in `stats`


def _boxes(objects) -> list[list[float]]:
    """Corner-sorted boxes of the items with a finite `bbox_2d`; anything else is skipped."""
    return [box for _, box in _placed_boxes(objects)]


def _placed_boxes(objects) -> list[tuple[int, list[float]]]:
    """(image index, corner-sorted box) of the items with a finite `bbox_2d`: the image an item
    names (`"image": k`, a row with several images), 0 where it names none, -1 (no image, so
    overlapping nothing) where what it names is not an index."""
    placed = []
    for item in objects or []:
        box = as_coords(item.get("bbox_2d"), 4) if isinstance(item, dict) else None
        if box is not None:
            image = item.get("image", 0)
            placed.append((image if is_image_index(image) else -1, sort_corners(box)))
    return placed


def _label_boxes(label) -> list[tuple[int, list[float]]]:
    """Label boxes with their image (a list of objects or its JSON string); labels are trusted,
    so malformed raises."""
    objects = safe_json(label) if isinstance(label, str) else label
    if not isinstance(objects, list):
        raise ValueError(f"malformed grounding label: {label!r:.200}")
    boxes = _placed_boxes(objects)
    if len(boxes) != len(objects):
        raise ValueError(f"grounding label object without a valid bbox_2d: {label!r:.200}")
    return boxes


def _pixel(value: float, size: int) -> int:
    # Clip before rounding so absurd coordinates (1e300) stay cheap and in range.
    return int(round(min(max(value, 0.0), float(size))))


def rasterise(boxes: list[list[float]], width: int, height: int) -> np.ndarray:
    """Boolean [height, width] mask of the union of corner-sorted boxes, clipped to the image."""
    mask = np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        mask[_pixel(y1, height) : _pixel(y2, height), _pixel(x1, width) : _pixel(x2, width)] = True
    return mask


def union_overlap(pred: list, label: list, width: int, height: int) -> tuple[float, int, int]:
    """(per-sample IoU, intersection pixels, union pixels) of the two box unions."""
    if not pred and not label:
        return 1.0, 0, 0  # a correct "nothing there"; adds 0/0 to cIoU
    pred_mask, label_mask = rasterise(pred, width, height), rasterise(label, width, height)
    inter = int(np.logical_and(pred_mask, label_mask).sum())
    union = int(np.logical_or(pred_mask, label_mask).sum())
    return (inter / union if union else 0.0), inter, union


def placed_overlap(pred: list, label: list, width: int, height: int) -> tuple[float, int, int]:
    """union_overlap of (image, box) lists, image by image: a row with several images overlaps
    a predicted box only with the label's boxes in the same image; pixels summed over images."""
    if not pred and not label:
        return 1.0, 0, 0
    inter = union = 0
    for image in {k for k, _ in pred} | {k for k, _ in label}:
        mine = [b for k, b in pred if k == image]
        theirs = [b for k, b in label if k == image] if image >= 0 else []
        _, i, u = union_overlap(mine, theirs, width, height)
        inter, union = inter + i, union + u
    return (inter / union if union else 0.0), inter, union


def _per_sample(value, count: int, name: str) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value] * count
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} entries for {count} completions")
    return [int(v) for v in values]


@register_metric("grounding")
class GroundingMetrics(Metric):
    """Accuracy, reward, format rates, gIoU, cIoU, N-Acc and think length, overall and per group.

    `format_rate`: the answer parses as a JSON list of objects; `strict_format_rate`: the whole
    completion is `<think>…</think><answer>…</answer>` (strict whole-format compliance; summaries
    written before the name changed call it `think_rate`).

    `update(completions, rewards, labels, groups, width, height)` takes the reward dicts already
    computed for the completions (keys `total` and `correct` are read) and the label objects in
    the same pixel frame; `compute()` returns plain Python numbers, `None` where a ratio has no
    denominator.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, groups=GROUPS, **kwargs):
        super().__init__(**kwargs)
        self.group_names = tuple(groups)
        if len(set(self.group_names)) != len(self.group_names):
            raise ValueError(f"duplicate group names: {self.group_names}")
        self._row = {name: i + 1 for i, name in enumerate(self.group_names)}  # row 0 is overall
        # float64: pixel counts summed over a large eval set stay exact.
        zeros = torch.zeros(len(self.group_names) + 1, len(FIELDS), dtype=torch.float64)
        self.add_state("stats", default=zeros, dist_reduce_fx="sum")

    def update(self, completions, rewards, labels, groups, width, height) -> None:
        count = len(completions)
        if not (len(rewards) == len(labels) == len(groups) == count):
            raise ValueError("completions, rewards, labels and groups must have the same length")
        widths = _per_sample(width, count, "width")
        heights = _per_sample(height, count, "height")
        # Accumulate on the host; one transfer at the end also suits a metric moved to the GPU.
        delta = np.zeros(tuple(self.stats.shape))
        for text, reward, label, group, w, h in zip(completions, rewards, labels, groups, widths, heights):
            values = self.sample_values(text, reward, label, w, h)
            row = np.array([float(values.get(name, 0.0)) for name in FIELDS])
            delta[0] += row
            if group in self._row:  # unknown groups still count overall
                delta[self._row[group]] += row
        self.stats += torch.as_tensor(delta, dtype=self.stats.dtype, device=self.stats.device)

    @staticmethod
    def sample_values(text: str, reward: dict, label, w: int, h: int) -> dict:
        """One completion's contribution to each field."""
        parsed = parse_completion(text)
        label_boxes = _label_boxes(label)
        sample_iou, inter, union = placed_overlap(_placed_boxes(parsed.objects), label_boxes, w, h)
        return {
            "n": 1,
            "correct": float(reward["correct"]),
            "reward": float(reward["total"]),
            "format": parsed.objects is not None,
            "strict_format": parsed.strict_format,  # the whole text is <think>…</think><answer>…</answer>
            "giou_sum": sample_iou,
            "inter": inter,
            "union": union,
            "n_nonobj": not label_boxes,
            # N-Acc wants an explicit, parsable `[]`, not merely no usable boxes.
            "nonobj_correct": not label_boxes and parsed.objects == [],
            "think_words": len(parsed.think.split()) if parsed.think else 0,
        }

    @staticmethod
    def _summary(row: list[float]) -> dict:
        def ratio(num: str, den: str):
            value = row[_COL[num]] / row[_COL[den]] if row[_COL[den]] > 0 else None
            return value if value is None or math.isfinite(value) else None

        return {
            "accuracy": ratio("correct", "n"),
            "mean_reward": ratio("reward", "n"),
            "format_rate": ratio("format", "n"),
            "strict_format_rate": ratio("strict_format", "n"),
            "giou": ratio("giou_sum", "n"),
            "ciou": ratio("inter", "union"),
            "n_acc": ratio("nonobj_correct", "n_nonobj"),
            "think_words": ratio("think_words", "n"),
            "num_examples": int(row[_COL["n"]]),
        }

    def compute(self) -> dict:
        rows = self.stats.tolist()
        result = self._summary(rows[0])
        result["groups"] = {
            name: self._summary(rows[i]) for name, i in self._row.items() if rows[i][_COL["n"]] > 0
        }
        return result


@register_metric("answer")
class AnswerMetrics(GroundingMetrics):
    """Accuracy of an answer text (counting, multiple choice, exact answers), overall and per
    group: the reward's own `correct`, its mean total, the share of answers it could read
    (`format_rate`: its `answer_format` component), strict format and think length. There are
    no boxes: gIoU, cIoU and N-Acc are None. `labels`, `width` and `height` are not read."""

    @staticmethod
    def sample_values(text: str, reward: dict, label, w: int, h: int) -> dict:
        parsed = parse_completion(text)
        return {
            "n": 1,
            "correct": float(reward["correct"]),
            "reward": float(reward["total"]),
            "format": float(reward.get("answer_format", 0.0)) > 0,
            "strict_format": parsed.strict_format,
            "think_words": len(parsed.think.split()) if parsed.think else 0,
        }

    @staticmethod
    def _summary(row: list[float]) -> dict:
        return GroundingMetrics._summary(row) | {"giou": None, "ciou": None, "n_acc": None}
