"""Grounding labels: parsing a dataset's `solution`, checking it against the images, scaling.

A row with several images names the image each object lies in: `"image": k`, the 0-based index
into the row's `images` (0 where an object does not say). Each object is checked against its own
image's stored size and scaled with that image's resize to the model frame.

The canonical JSON layout of an answer (what rollouts and rendered labels write) is
`visurf.rewards.parsing.format_answer`'s.
"""

from __future__ import annotations

import json
import math

# Real datasets round box edges; allow this much (in the dataset's own pixels) past the image border.
EDGE_TOLERANCE = 1.0


def parse_solution(solution) -> list[dict]:
    """A list of {"bbox_2d": [4 numbers], "point_2d": [2 numbers]}; ValueError saying what is wrong."""
    if isinstance(solution, str):
        try:
            solution = json.loads(solution)
        except json.JSONDecodeError as err:
            raise ValueError(f"solution is not valid JSON ({err.msg} at char {err.pos})") from None
    if not isinstance(solution, list):
        raise ValueError(f"solution is not a JSON list (got {type(solution).__name__})")
    objects = []
    for i, obj in enumerate(solution):
        if not isinstance(obj, dict):
            raise ValueError(f"solution[{i}] is not an object (got {type(obj).__name__})")
        box, point = obj.get("bbox_2d"), obj.get("point_2d")
        if not _numbers(box, 4):
            raise ValueError(f"solution[{i}] needs a bbox_2d of 4 numbers, got {box!r}")
        if not _numbers(point, 2):
            raise ValueError(f"solution[{i}] needs a point_2d of 2 numbers, got {point!r}")
        item = {"bbox_2d": [float(v) for v in box], "point_2d": [float(v) for v in point]}
        if "image" in obj:
            image = obj["image"]
            if isinstance(image, bool) or not isinstance(image, int) or image < 0:
                raise ValueError(f"solution[{i}] image must be an image index (0, 1, ...), got {image!r}")
            item["image"] = image
        objects.append(item)
    return objects


def _numbers(value, n: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def check_in_image(objects: list[dict], width: int, height: int) -> None:
    """ValueError when a box is empty or leaves the image, or a point lies outside the image or
    outside its own box (the reward asks for the point inside the box)."""
    for i, obj in enumerate(objects):
        _check_object(i, obj, width, height, "image")


def check_in_images(objects: list[dict], sizes: list[tuple[int, int]]) -> None:
    """As check_in_image, each object against its own image (`"image": k`, default 0) of the
    row's images of stored `sizes` [(width, height), ...]; ValueError naming an index the row
    does not have."""
    for i, obj in enumerate(objects):
        k = obj.get("image", 0)
        if k >= len(sizes):
            has = f"{len(sizes)} image{'' if len(sizes) == 1 else 's'}" if sizes else "no image"
            raise ValueError(f"solution[{i}] lies in image {k}, but the row has {has}")
        _check_object(i, obj, *sizes[k], "image" if len(sizes) == 1 else f"image {k}")


def _check_object(i: int, obj: dict, width: int, height: int, what: str) -> None:
    tol = EDGE_TOLERANCE
    x1, y1, x2, y2 = obj["bbox_2d"]
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"solution[{i}] bbox_2d {_fmt(obj['bbox_2d'])} is empty (needs x2 > x1 and y2 > y1)")
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise ValueError(
            f"solution[{i}] bbox_2d {_fmt(obj['bbox_2d'])} is outside the {width}x{height} {what}"
        )
    px, py = obj["point_2d"]
    if not (-tol <= px <= width + tol and -tol <= py <= height + tol):
        raise ValueError(
            f"solution[{i}] point_2d {_fmt(obj['point_2d'])} is outside the {width}x{height} {what}"
        )
    if not (x1 - tol <= px <= x2 + tol and y1 - tol <= py <= y2 + tol):
        raise ValueError(
            f"solution[{i}] point_2d {_fmt(obj['point_2d'])} is outside its own bbox_2d {_fmt(obj['bbox_2d'])}"
        )


def scale_objects(objects: list[dict], src: tuple[int, int], dst: tuple[int, int]) -> list[dict]:
    """Map coordinates from a src (width, height) image to dst, rounded to ints and kept inside dst."""
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    w, h = dst
    out = []
    for obj in objects:
        x1, y1, x2, y2 = obj["bbox_2d"]
        bx1, bx2 = _span(x1 * sx, x2 * sx, w)
        by1, by2 = _span(y1 * sy, y2 * sy, h)
        px, py = obj["point_2d"]
        point = [min(max(_round(px * sx), 0), w), min(max(_round(py * sy), 0), h)]
        out.append({"bbox_2d": [bx1, by1, bx2, by2], "point_2d": point})
        if "image" in obj:
            out[-1]["image"] = obj["image"]
    return out


def scale_to_frame(objects: list[dict], sizes: list[tuple[int, int]], frame: tuple[int, int]) -> list[dict]:
    """Each object mapped from its own image (`"image": k`, default 0; stored sizes `sizes`) to
    the model frame, as that image is resized: scale_objects per image. A row with one image
    keeps no image index; one with several keeps each object's."""
    out = []
    for obj in objects:
        (scaled,) = scale_objects([obj], tuple(sizes[obj.get("image", 0)]), frame)
        if len(sizes) > 1:
            scaled["image"] = obj.get("image", 0)
        else:
            scaled.pop("image", None)
        out.append(scaled)
    return out


def _span(a: float, b: float, limit: int) -> tuple[int, int]:
    # Rounding can collapse a thin box; keep it at least one pixel wide and inside the frame.
    lo, hi = min(max(_round(a), 0), limit), min(max(_round(b), 0), limit)
    if hi <= lo:
        hi = lo + 1
        if hi > limit:
            lo, hi = limit - 1, limit
    return lo, hi


def _round(v: float) -> int:
    return math.floor(v + 0.5)  # half up: Python's round() is half-to-even


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
