"""Verifiable rewards (docs/rewards.md) and the registry that selects them by name."""

from visurf.rewards.grounding import GroundingReward
from visurf.rewards.others import CountingReward, ExactAnswerReward, MultipleChoiceReward
from visurf.rewards.parsing import (
    Parsed,
    coerce_objects,
    format_answer,
    format_completion,
    parse_completion,
)
from visurf.rewards.registry import (
    REWARDS,
    Reward,
    UnknownRewardError,
    build_reward,
    label_answer,
    register_reward,
)
from visurf.rewards.vision_reasoner import VisionReasonerReward

__all__ = [
    "REWARDS",
    "Reward",
    "CountingReward",
    "ExactAnswerReward",
    "GroundingReward",
    "MultipleChoiceReward",
    "Parsed",
    "UnknownRewardError",
    "VisionReasonerReward",
    "build_reward",
    "coerce_objects",
    "format_answer",
    "format_completion",
    "label_answer",
    "parse_completion",
    "register_reward",
]
