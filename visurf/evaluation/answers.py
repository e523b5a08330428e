"""A completion's boxes and points, mapped from the model frame back to the original image.

The released evaluation (VisionReasoner's `vision_reasoner/models/visurf_model.py`,
`extract_bbox_points_think`) reads the text between `<answer>` and `</answer>` as JSON and scales
each element's `bbox_2d` and `point_2d` by original size / model frame, per axis, rounding with
`int(v * f + 0.5)` (truncation toward zero after adding a half). Its failures shape the metrics, so
they are kept, rule for rule:

- no answer block, JSON that does not decode, or any element whose box cannot be scaled (not an
  object, no `bbox_2d`, fewer than 4 coordinates, a non-number): no boxes and no points, exactly
  like an empty answer `[]`;
- boxes that scale but a point that does not: the boxes are kept and there are no points (the
  segmenter then draws nothing, see `visurf.models.segmenter`);
- only the first 4 box and 2 point coordinates are read; booleans count as 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visurf.rewards.parsing import safe_json
from visurf.rewards.vision_reasoner import answer_text


@dataclass(frozen=True)
class MappedAnswer:
    boxes: list[list[int]] = field(default_factory=list)  # [x1, y1, x2, y2] in original pixels
    points: list[list[int]] = field(default_factory=list)  # [x, y] in original pixels


def _scaled(coords, factors: tuple[float, ...]) -> list[int]:
    # Indexing (not zip) so that a short list raises, as the released code's coords[3] does.
    return [int(coords[i] * f + 0.5) for i, f in enumerate(factors)]


def map_answer(text: str, x_factor: float, y_factor: float) -> MappedAnswer:
    """The answer's boxes and points in original pixels; factors are original size / model frame."""
    inner = answer_text(text) if isinstance(text, str) else None
    if inner is None:
        return MappedAnswer()
    data = safe_json(inner)
    try:
        boxes = [_scaled(item["bbox_2d"], (x_factor, y_factor, x_factor, y_factor)) for item in data]
    except Exception:  # anything the released code's guarded block would raise on
        return MappedAnswer()
    try:
        points = [_scaled(item["point_2d"], (x_factor, y_factor)) for item in data]
    except Exception:
        points = []
    return MappedAnswer(boxes, points)
