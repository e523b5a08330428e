"""Box and point geometry on plain floats; every result is finite (overflow maps to a safe value)."""

import math


def sort_corners(box: list[float]) -> list[float]:
    """[x1, y1, x2, y2] with x1 <= x2 and y1 <= y2 (a swapped-corner box covers the same pixels)."""
    x1, y1, x2, y2 = box
    return [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two corner-sorted boxes; 0 for degenerate or overflowing boxes."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if not (union > 0 and math.isfinite(union) and math.isfinite(inter)):
        return 0.0
    return min(1.0, max(0.0, inter / union))


def mean_l1(a: list[float], b: list[float]) -> float:
    """Mean absolute coordinate difference (may be inf for absurd coordinates, never NaN)."""
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def distance(p: list[float], q: list[float]) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


def inside(point: list[float], box: list[float]) -> bool:
    """Point within a corner-sorted box, edges included."""
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]
