"""Loss and advantage maths for SFT, RLVR (GRPO family) and ViSurf, and the label-injection flags.

Advantage estimators are registered by name (`objective.advantage_estimator`, default `grpo`):
`@register_advantage_estimator("name")` on a function of the signature of `group_advantages`.
"""

from visurf.algorithms.advantages import (
    ADVANTAGE_ESTIMATORS,
    SCALE_REWARDS,
    group_advantages,
    register_advantage_estimator,
)
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
    PolicyLossOptions,
    aggregate,
    clipped_surrogate,
    kl_k3,
    on_policy_surrogate,
    policy_loss,
    sft_loss,
    shaped_surrogate,
)

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AGGREGATIONS",
    "HOW",
    "LABEL_RATIOS",
    "LABEL_REWARDS",
    "SCALE_REWARDS",
    "WHEN",
    "Injection",
    "PolicyLossOptions",
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
    "register_advantage_estimator",
    "sft_loss",
    "shaped_surrogate",
]
