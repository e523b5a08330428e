"""`no_think`: the label carries no real reasoning, so it is not judged or trained on it.

Its think-format check counts as satisfied (so a correct label is not ranked below correct
rollouts for lacking a think block), and its think-segment tokens are masked out of the loss:
the label supervises the answer only.
"""

from __future__ import annotations

from torch import Tensor

from visurf.reward_control.strategy import Strategy, register_strategy


def exempt_think_reward(components: dict[str, float], component: str = "think_format") -> dict[str, float]:
    """The label's reward with its think-format term set to satisfied (1)."""
    if component not in components:
        return dict(components)
    out = dict(components)
    out["total"] = out["total"] - out[component] + 1.0
    out[component] = 1.0
    return out


def mask_think_tokens(mask: Tensor, think_spans: list[tuple[int, int] | None]) -> Tensor:
    """Zero `mask[i, start:end]` ([B, T]) for each row's think-segment span.

    Spans are half-open token ranges `[start, end)` in completion positions, one entry per row;
    `None` leaves the row unchanged. A span reaching past `T` (a truncated completion) is cut at
    `T`. Returns a new tensor of the same dtype.
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


@register_strategy("no_think")
class NoThink(Strategy):
    def score(self, components):
        return exempt_think_reward(components)

    def loss_mask(self, mask, think_spans):
        return mask_think_tokens(mask, think_spans)
