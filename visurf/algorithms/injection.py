"""Where the label enters a rollout group, and how: the label-injection design space (docs/injection.md).

Four flags, ViSurf's choices the defaults (`conf/injection/*.yaml` names the neighbours):

- `when`: `always`, or `on_failure` — only in groups where no rollout is correct (judged on all G
  sampled rollouts by the reward's `correct` flag);
- `how`: `add` the label as member G+1, or `replace` the group's last rollout with it (that
  rollout leaves the batch: no loss, no count in any denominator);
- `label_ratio`: `on_policy` (`exp(ℓ − sg ℓ)`, unclipped), `shaped` (`f(p) = p / (p + γ)`,
  unclipped, `γ = label_gamma`) or `clipped` like a rollout (`visurf.algorithms.policy_loss`);
- `label_reward`: `scored` (as the reward scores it), `maximum` (the reward's maximum), or
  `smoothed` (as scored, then smoothed as `reward_control` says; without `reward_control.smooth`,
  the ablation, it stays as scored).

Tensors: B groups (prompts), G sampled rollouts each; `[B, G]` rollout tensors are grouped by row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from visurf.algorithms.advantages import _sample_std, group_advantages
from visurf.algorithms.policy_loss import LABEL_RATIOS

WHEN = ("always", "on_failure")
HOW = ("add", "replace")
LABEL_REWARDS = ("scored", "maximum", "smoothed")


@dataclass(frozen=True)
class Injection:
    when: str = "always"
    how: str = "add"
    label_ratio: str = "on_policy"
    label_gamma: float = 0.1  # shaped: f(p) = p / (p + label_gamma)
    label_reward: str = "smoothed"

    def __post_init__(self):
        # The one check of each flag (visurf.config.validate builds this object to run them).
        for field, allowed in (
            ("when", WHEN),
            ("how", HOW),
            ("label_ratio", LABEL_RATIOS),
            ("label_reward", LABEL_REWARDS),
        ):
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(f"injection.{field}={value!r} is invalid: it must be one of {list(allowed)}")
        gamma = self.label_gamma
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma < math.inf:
            raise ValueError(f"injection.label_gamma={gamma!r} is invalid: it must be a finite number > 0")

    @classmethod
    def from_config(cls, cfg) -> Injection:
        """From the `injection` config group; None (a config from before the group) is ViSurf."""
        if cfg is None:
            return cls()
        return cls(
            when=str(cfg.when),
            how=str(cfg.how),
            label_ratio=str(cfg.label_ratio),
            label_gamma=cfg.label_gamma,
            label_reward=str(cfg.label_reward),
        )


def entering_groups(correct: Tensor, when: str) -> Tensor:
    """[B] bool: the groups the label enters. `correct` [B, G] is each rollout's correctness (> 0)."""
    if when not in WHEN:
        raise ValueError(f"when must be one of {WHEN}, got {when!r}")
    if correct.dim() != 2:
        raise ValueError(f"correct must have shape [B, G], got {tuple(correct.shape)}")
    if when == "always":
        return torch.ones(correct.shape[0], dtype=torch.bool, device=correct.device)
    return ~(correct > 0).any(dim=1)


def group_members(enters: Tensor, group_size: int, how: str) -> Tensor:
    """[B, G] bool: the rollouts that stay in their group (`replace` drops the last of each entered group)."""
    if how not in HOW:
        raise ValueError(f"how must be one of {HOW}, got {how!r}")
    members = torch.ones(enters.shape[0], group_size, dtype=torch.bool, device=enters.device)
    if how == "replace":
        if group_size < 2:
            raise ValueError("how='replace' needs at least 2 rollouts per group (one stays beside the label)")
        members[:, -1] = ~enters
    return members


def injected_advantages(
    rollout_rewards: Tensor,
    label_rewards: Tensor,
    enters: Tensor,
    how: str,
    scale_rewards: str = "group",
    eps: float = 1e-4,
    estimator=group_advantages,
) -> tuple[Tensor, Tensor]:
    """Group-relative advantages of rollouts and labels, each group with its own members.

    `rollout_rewards` [B, G], `label_rewards` [B], `enters` [B] bool. A group the label enters has
    the members `{o_1..o_G, ŷ}` (`add`) or `{o_1..o_{G-1}, ŷ}` (`replace`); any other group is its G
    rollouts. Advantages are `estimator` (by default `visurf.algorithms.group_advantages`) over each
    group's members (with `scale_rewards="batch"`, the std of every member of the batch). Returns `(rollout_adv [B, G],
    label_adv [B])`; entries of non-members (a replaced rollout, the label of a group it does not
    enter) are 0. When the label enters every group by `add`, this is exactly
    `group_advantages` of the `[B, G+1]` rewards with the label last.
    """
    b, g = rollout_rewards.shape
    if label_rewards.shape != (b,) or enters.shape != (b,):
        raise ValueError(
            f"label_rewards and enters must have shape ({b},), got {tuple(label_rewards.shape)} and {tuple(enters.shape)}"
        )
    enters = enters.to(torch.bool)
    label_rewards = label_rewards.to(rollout_rewards.dtype)
    if how == "replace":
        members = group_members(enters, g, how)
        rewards = torch.where(members, rollout_rewards, label_rewards[:, None])  # the label in the last slot
        adv = estimator(rewards, scale_rewards, eps)
        zero = torch.zeros_like(adv)
        return torch.where(members, adv, zero), torch.where(enters, adv[:, -1], zero[:, -1])
    if how != "add":
        raise ValueError(f"how must be one of {HOW}, got {how!r}")
    with_label = torch.cat([rollout_rewards, label_rewards[:, None]], dim=1)
    if enters.all():  # ViSurf's case: one rectangular [B, G+1] group tensor
        adv = estimator(with_label, scale_rewards, eps)
        return adv[:, :g], adv[:, g]
    # Groups of G+1 and G members side by side: each row's advantages depend on its row only
    # (batch scaling aside), so compute both shapes and keep each group's own.
    centred = "none" if scale_rewards == "batch" else scale_rewards
    adv_with = estimator(with_label, centred, eps)
    adv_without = estimator(rollout_rewards, centred, eps)
    rollout_adv = torch.where(enters[:, None], adv_with[:, :g], adv_without)
    label_adv = torch.where(enters, adv_with[:, g], torch.zeros_like(adv_with[:, g]))
    if scale_rewards == "batch":
        present = torch.cat([rollout_rewards.reshape(-1), label_rewards[enters]])
        scale = _sample_std(present) + eps
        rollout_adv, label_adv = rollout_adv / scale, label_adv / scale
    return rollout_adv, label_adv


def label_rewards(scored: Tensor, mode: str, maximum: float | None = None) -> Tensor:
    """The label's reward [B] before reward control: as `scored`, or the reward's `maximum`.

    `smoothed` returns `scored` too: its smoothing is reward control's, applied after this.
    """
    if mode not in LABEL_REWARDS:
        raise ValueError(f"label_reward must be one of {LABEL_REWARDS}, got {mode!r}")
    if mode == "maximum":
        if maximum is None:
            raise ValueError(
                "label_reward='maximum' needs the reward's maximum (the reward class's max_total)"
            )
        return torch.full_like(scored, float(maximum))
    return scored
