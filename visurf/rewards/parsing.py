"""Parsing of `<think>…</think><answer>…</answer>` completions and the canonical answer layout."""

import json
import math
import re
from dataclasses import dataclass

_STRICT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_PLAIN_NUMBERS = frozenset((int, float))


@dataclass(frozen=True)
class Parsed:
    think: str | None
    answer: str | None
    strict_format: bool
    objects: list | None


def _is_strict(text: str) -> bool:
    # Each tag exactly once makes the non-greedy full match unambiguous.
    body = text.strip()
    return all(body.count(tag) == 1 for tag in _TAGS) and _STRICT.fullmatch(body) is not None


def between(text: str, opening: str, closing: str) -> str | None:
    """The text between the first `opening` and the first `closing` after it, else None.

    What `re.search(opening + "(.*?)" + closing, text, re.DOTALL)` finds, in linear time: the
    regex retries from every later `opening` when no `closing` follows (quadratic: '<think>' x
    50,000 took 88 s), yet none of those retries can succeed where the first failed.
    """
    start = text.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = text.find(closing, start)
    return None if end < 0 else text[start:end]


def safe_json(text: str):
    """json.loads that returns None instead of raising (deep nesting, 10**5-digit ints, junk)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, OverflowError, TypeError, MemoryError):
        return None


def parse_completion(text: str) -> Parsed:
    """Split a completion into think text, answer text and the decoded answer list; never raises."""
    if not isinstance(text, str):
        return Parsed(None, None, False, None)
    answer_text = between(text, "<answer>", "</answer>")
    decoded = safe_json(answer_text) if answer_text is not None else None
    return Parsed(
        think=between(text, "<think>", "</think>"),
        answer=answer_text,
        strict_format=_is_strict(text),
        objects=decoded if isinstance(decoded, list) else None,
    )


def as_finite_float(value) -> float | None:
    """A real JSON number (not bool) as a finite float, else None (NaN, inf, 10**400, strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def as_coords(value, length: int) -> list[float] | None:
    """A list of exactly `length` finite numbers as floats, else None."""
    if not isinstance(value, list) or len(value) != length:
        return None
    # Runs for every element of every answer (25,000 in a 1 MB one): JSON's exact int and float
    # types take a fast path; anything else (bool, str, a numpy scalar) is checked one by one.
    if not _PLAIN_NUMBERS.issuperset(map(type, value)) and any(as_finite_float(v) is None for v in value):
        return None
    try:
        coords = list(map(float, value))
    except OverflowError:  # an int beyond float range
        return None
    return coords if all(map(math.isfinite, coords)) else None


def coerce_objects(value) -> list[dict] | None:
    """Validate label objects (a list, or its JSON string) -> floats, or None if malformed."""
    if isinstance(value, str):
        value = safe_json(value)
    if not isinstance(value, list):
        return None
    objects = []
    for item in value:
        if not isinstance(item, dict):
            return None
        box, point = as_coords(item.get("bbox_2d"), 4), as_coords(item.get("point_2d"), 2)
        if box is None or point is None:
            return None
        objects.append({"bbox_2d": box, "point_2d": point})
        image = item.get("image")
        if image is not None:  # a row with several images: the image the object lies in
            if not is_image_index(image):
                return None
            objects[-1]["image"] = image
    return objects


def is_image_index(value) -> bool:
    """0, 1, ...: an image of a row (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ints(coords) -> list[int]:
    return [int(round(float(c))) for c in coords]


def format_answer(objects: list[dict]) -> str:
    """Canonical answer JSON: compact, keys bbox_2d then point_2d, integer coordinates, then the
    object's image index where it has one (a row with several images)."""
    canonical = []
    for obj in objects:
        item = {key: _ints(obj[key]) for key in ("bbox_2d", "point_2d") if key in obj}
        if "image" in obj:
            item["image"] = int(obj["image"])
        canonical.append(item)
    return json.dumps(canonical, separators=(",", ":"))


def format_completion(think: str | None, objects: list[dict] | str) -> str:
    """The completion template: `<think>T</think><answer>JSON</answer>` (no think block if None);
    `objects` may be the answer text already (an example's `solution`)."""
    answer = f"<answer>{objects if isinstance(objects, str) else format_answer(objects)}</answer>"
    return answer if think is None else f"<think>{think}</think>{answer}"
