"""Loss and advantage maths for SFT, RLVR (GRPO family) and ViSurf (DESIGN §2)."""

from visurf.algorithms.advantages import SCALE_REWARDS, group_advantages
from visurf.algorithms.policy_loss import (
    AGGREGATIONS,
    aggregate,
    clipped_surrogate,
    kl_k3,
    on_policy_surrogate,
    policy_loss,
    sft_loss,
)
from visurf.algorithms.reward_control import clamp_label_advantage, mask_think_tokens

__all__ = [
    "AGGREGATIONS",
    "SCALE_REWARDS",
    "aggregate",
    "clamp_label_advantage",
    "clipped_surrogate",
    "group_advantages",
    "kl_k3",
    "mask_think_tokens",
    "on_policy_surrogate",
    "policy_loss",
    "sft_loss",
]
