"""Parsing of `<think>…</think><answer>…</answer>` completions and the canonical answer layout."""

import json
import math
import re
from dataclasses import dataclass

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_STRICT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


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
    think = _THINK.search(text)
    answer = _ANSWER.search(text)
    answer_text = answer.group(1) if answer else None
    decoded = safe_json(answer_text) if answer_text is not None else None
    return Parsed(
        think=think.group(1) if think else None,
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
    coords = [as_finite_float(v) for v in value]
    return None if any(c is None for c in coords) else coords


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
    return objects


def _ints(coords) -> list[int]:
    return [int(round(float(c))) for c in coords]


def format_answer(objects: list[dict]) -> str:
    """Canonical answer JSON: compact, keys bbox_2d then point_2d, integer coordinates."""
    canonical = []
    for obj in objects:
        canonical.append({key: _ints(obj[key]) for key in ("bbox_2d", "point_2d") if key in obj})
    return json.dumps(canonical, separators=(",", ":"))


def format_completion(think: str | None, objects: list[dict]) -> str:
    """The completion template: `<think>T</think><answer>JSON</answer>` (no think block if None)."""
    answer = f"<answer>{format_answer(objects)}</answer>"
    return answer if think is None else f"<think>{think}</think>{answer}"
