"""The rewards by name, and what a reward is: a registered class a config names with `reward.name`.

A reward plugs in without touching callers: a class with the members of `Reward`, decorated
with `@register_reward("name")` (docs/extending.md has a worked example).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from visurf.config.registry import Registry, UnknownNameError

REWARDS = Registry("reward")
register_reward = REWARDS.register
UnknownRewardError = UnknownNameError


@runtime_checkable
class Reward(Protocol):
    """What a stage and the evaluator use of a reward (`StageHost.reward_fn`)."""

    components: tuple[str, ...]  # the parts of `total`, each logged as reward/<component>
    max_total: float  # the highest total (injection.label_reward=maximum gives it to the label)
    # Optional members (absent: a grounding reward, boxes and points in the images' frames):
    # `label_answer(solution) -> str`, a classmethod: the answer text of a row's label
    # (visurf.rewards.registry.label_answer); `metric`: the name of the evaluation metric in
    # visurf.evaluation.metrics.METRICS ("grounding" where absent).

    def __call__(self, completion: str, solution, width: int, height: int) -> dict[str, float]:
        """{component: score, ..., "total": their sum, "correct": 0 or 1}; never raises on a
        completion (a malformed one scores 0 on what it fails), raises on a malformed label."""
        ...


def label_answer(name: str):
    """How rows scored by reward `name` give their label: None where the labels are boxes and
    points in the images' frames (grounding: visurf.data.labels reads, checks and scales them),
    else the reward's `label_answer`: the row's solution -> the answer text as the policy writes
    it between <answer> tags, ValueError when the solution is not such an answer."""
    return getattr(REWARDS.get(name), "label_answer", None)


def build_reward(name: str, **kwargs):
    """Instantiate the reward registered under `name` with `kwargs`."""
    return REWARDS.get(name)(**kwargs)
