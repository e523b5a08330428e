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
    images: list[int] = field(default_factory=list)  # each box's image, for a row with several


def _scaled(coords, factors: tuple[float, ...]) -> list[int]:
    # Indexing (not zip) so that a short list raises, as the released code's coords[3] does.
    return [int(coords[i] * f + 0.5) for i, f in enumerate(factors)]


def map_answer(text: str, x_factor: float, y_factor: float, per_image=None) -> MappedAnswer:
    """The answer's boxes and points in original pixels; factors are original size / model frame.

    `per_image`: (x_factor, y_factor) of each image of a row with several: an element is scaled
    by those of the image it names (`"image": k`, 0 where it names none); an index the row does
    not have fails the element, as a malformed box does."""
    inner = answer_text(text) if isinstance(text, str) else None
    if inner is None:
        return MappedAnswer()
    data = safe_json(inner)
    try:
        images = [_image(item, per_image) for item in data] if per_image else []
        factors = [per_image[k] for k in images] if per_image else [(x_factor, y_factor)] * len(data)
        boxes = [_scaled(item["bbox_2d"], (fx, fy, fx, fy)) for item, (fx, fy) in zip(data, factors)]
    except Exception:  # anything the released code's guarded block would raise on
        return MappedAnswer()
    try:
        points = [_scaled(item["point_2d"], f) for item, f in zip(data, factors, strict=True)]
    except Exception:
        points = []
    return MappedAnswer(boxes, points, images)


def _image(item, per_image) -> int:
    k = item.get("image", 0)
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(per_image):
        raise ValueError(f"no image {k!r}")
    return k
