"""Advantage- and mask-level parts of ViSurf reward control (DESIGN §2, visurf's own definitions).

The text-level parts (``align`` rendering, the ``no_think`` reward exemption) live with the
reward and data code; here are the tensor operations they hand over to the loss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def clamp_label_advantage(advantages: Tensor, clamp_max: float) -> Tensor:
    """``smooth``: clamp the label's advantage (last column) to ``[0, c]``.

    ``A_ŷ ← min(max(A_ŷ, 0), c)``; rollout columns are returned unchanged. The lower bound
    stops a label that ranks below correct rollouts from pushing down correct answer tokens;
    the upper bound stops an all-failed group (``A_ŷ ≈ √G``) from turning into a large SFT step.
    Returns a new tensor.
    """
    if clamp_max < 0:
        raise ValueError(
            f"smooth clamp must be >= 0 (the label advantage is clamped to [0, c]), got {clamp_max}"
        )
    if advantages.dim() != 2 or advantages.shape[1] < 1:
        raise ValueError(
            f"advantages must have shape [num_groups, G+1] with the label last, got {tuple(advantages.shape)}"
        )
    label = advantages[:, -1:].clamp(min=0.0, max=clamp_max)
    return torch.cat([advantages[:, :-1], label], dim=1)


def mask_think_tokens(mask: Tensor, think_spans: list[tuple[int, int] | None]) -> Tensor:
    """``no_think``: zero ``mask[i, start:end]`` for each row's think-segment span.

    Spans are half-open token ranges ``[start, end)`` in completion positions, one entry per
    row; ``None`` leaves the row unchanged. A span reaching past ``T`` (a truncated
    completion) is cut at ``T``. Returns a new tensor of the same dtype.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must have shape [B, T], got {tuple(mask.shape)}")
    if len(think_spans) != mask.shape[0]:
        raise ValueError(
            f"need one think span (or None) per row: {mask.shape[0]} rows, {len(think_spans)} spans"
        )
    out = mask.clone()
    for row, span in enumerate(think_spans):
        if span is None:
            continue
        start, end = span
        if start < 0 or end < start:
            raise ValueError(f"think span of row {row} must satisfy 0 <= start <= end, got {span}")
        out[row, start:end] = 0
    return out
