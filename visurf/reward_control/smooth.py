"""`smooth`: the label's reward or advantage is smoothed, so the label pushes only where it helps.

Two definitions, chosen by `reward_control.smooth.mode` (docs/reward_control.md says where each
comes from):

- `group_mean`: when some rollout of the group reaches the label's reward (`r_i >= r_ŷ`), the
  label's reward becomes the mean reward of the group's rollouts, so its advantage is about 0;
  when none does (the policy fails where the label succeeds) it keeps its reward and pushes.
- `clamp`: the label's advantage is clamped to `[0, c]`. The lower bound stops a label that ranks
  below correct rollouts from pushing down correct answer tokens; the upper bound stops an
  all-failed group (`A_ŷ ≈ √G`) from turning into a large SFT step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from visurf.reward_control.strategy import Strategy, register_strategy

SMOOTH_MODES = ("group_mean", "clamp")


def group_mean_label_reward(
    rollout_rewards: Tensor, label_rewards: Tensor, members: Tensor | None = None
) -> Tensor:
    """`group_mean`: the label's reward, set to its group's mean rollout reward where reached.

    `rollout_rewards` [B, G] (one group per row), `label_rewards` [B], `members` [B, G] bool: the
    rollouts that are in the group (all when None; a rollout the label replaced is not). A rollout
    *reaches* the label when its total reward is greater than or equal to the label's (exact float
    comparison of the totals the advantages are computed from). Rows where some member reaches the
    label get the mean reward of their members; the others keep their reward. Returns a new [B]
    tensor.
    """
    if rollout_rewards.dim() != 2 or label_rewards.shape != rollout_rewards.shape[:1]:
        raise ValueError(
            "rollout_rewards must be [B, G] and label_rewards [B], got "
            f"{tuple(rollout_rewards.shape)} and {tuple(label_rewards.shape)}"
        )
    if members is None:
        members = torch.ones_like(rollout_rewards, dtype=torch.bool)
    reached = ((rollout_rewards >= label_rewards[:, None]) & members).any(dim=1)
    weights = members.to(rollout_rewards.dtype)
    mean = (rollout_rewards * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.where(reached, mean.to(label_rewards.dtype), label_rewards)


def clamp_label_advantage(label_advantages: Tensor, clamp_max: float) -> Tensor:
    """`clamp`: `A_ŷ ← min(max(A_ŷ, 0), c)` for a [B] tensor of label advantages (a new tensor).

    `c >= 0` is checked once, where the strategy is built (`Smooth`).
    """
    return label_advantages.clamp(min=0.0, max=clamp_max)


@register_strategy("smooth")
class Smooth(Strategy):
    """Options (`reward_control.smooth.*`): `mode` (group_mean | clamp) and `clamp` (c, clamp only)."""

    def __init__(self, mode: str = "group_mean", clamp: float = 1.0):
        if mode not in SMOOTH_MODES:
            raise ValueError(
                f"reward_control.smooth.mode={mode!r} is invalid: it must be one of {list(SMOOTH_MODES)}"
            )
        if isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or not 0 <= clamp < math.inf:
            raise ValueError(
                f"reward_control.smooth.clamp={clamp!r} is invalid: it must be a finite number >= 0"
            )
        self.mode, self.clamp = mode, float(clamp)

    def label_reward(self, rollout_rewards, label_rewards, members):
        if self.mode != "group_mean":
            return label_rewards
        return group_mean_label_reward(rollout_rewards, label_rewards, members)

    def label_advantage(self, label_advantages):
        return (
            clamp_label_advantage(label_advantages, self.clamp) if self.mode == "clamp" else label_advantages
        )
