"""Box and point geometry on plain floats; every result is finite (overflow maps to a safe value)."""

import math

import numpy as np


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


# Pairwise versions for M predictions x N labels ([M, 4] / [N, 4] boxes, [M, 2] / [N, 2] points,
# float64). Each element is computed with the same float operations, in the same order, as the
# scalar functions above, so a reward gives the same values either way; numpy only removes the
# Python loop (a 1 MB answer holds 25,000 objects).


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[M, N] `iou` of corner-sorted boxes."""
    a, b = a[:, None, :], b[None, :, :]
    with np.errstate(all="ignore"):  # overflow to inf / nan is mapped to 0 below, as in `iou`
        inter_w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
        inter_h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
        inter = inter_w * inter_h
        area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
        area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        union = area_a + area_b - inter
        valid = (union > 0) & np.isfinite(union) & np.isfinite(inter)
        return np.where(valid, np.clip(inter / np.where(valid, union, 1.0), 0.0, 1.0), 0.0)


def pairwise_mean_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[M, N] `mean_l1`: coordinates summed left to right, as Python's sum does."""
    with np.errstate(all="ignore"):
        diff = np.abs(a[:, None, :] - b[None, :, :])
        total = diff[..., 0]
        for k in range(1, a.shape[1]):
            total = total + diff[..., k]
        return total / a.shape[1]


def pairwise_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """[M, N] `distance` (math.hypot itself, whose rounding numpy's hypot need not share)."""
    with np.errstate(all="ignore"):
        dx, dy = p[:, None, 0] - q[None, :, 0], p[:, None, 1] - q[None, :, 1]
    hypot = np.frompyfunc(math.hypot, 2, 1)
    return hypot(dx, dy).astype(np.float64).reshape(dx.shape)


def rows_inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[M] `inside(points[i], boxes[i])`."""
    return (
        (boxes[:, 0] <= points[:, 0])
        & (points[:, 0] <= boxes[:, 2])
        & (boxes[:, 1] <= points[:, 1])
        & (points[:, 1] <= boxes[:, 3])
    )
