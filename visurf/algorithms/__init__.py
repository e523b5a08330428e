"""Loss and advantage maths for SFT, RLVR (GRPO family) and ViSurf, and the label-injection flags."""

from visurf.algorithms.advantages import SCALE_REWARDS, group_advantages
from visurf.algorithms.injection import (
    HOW,
    LABEL_REWARDS,
    WHEN,
    Injection,
    entering_groups,
    group_members,
    injected_advantages,
    label_rewards,
)
from visurf.algorithms.policy_loss import (
    AGGREGATIONS,
    LABEL_RATIOS,
    aggregate,
    clipped_surrogate,
    kl_k3,
    on_policy_surrogate,
    policy_loss,
    sft_loss,
    shaped_surrogate,
)

__all__ = [
    "AGGREGATIONS",
    "HOW",
    "LABEL_RATIOS",
    "LABEL_REWARDS",
    "SCALE_REWARDS",
    "WHEN",
    "Injection",
    "aggregate",
    "clipped_surrogate",
    "entering_groups",
    "group_advantages",
    "group_members",
    "injected_advantages",
    "kl_k3",
    "label_rewards",
    "on_policy_surrogate",
    "policy_loss",
    "sft_loss",
    "shaped_surrogate",
]
