"""`align`: render the label as the policy would write it.

Without it the label is `<answer>` + the dataset's raw solution + `</answer>`: readable by the
reward, but with no think block and in the dataset's own JSON layout and frame, so its
likelihood under the policy is tiny and its gradient huge.
"""

from __future__ import annotations

from visurf.reward_control.strategy import LabelCompletion, Strategy, raw_label, register_strategy
from visurf.rewards.parsing import format_answer, parse_completion

NEUTRAL_THINK = "I look at the image and find the objects that match."


def best_rollout_think(rollouts: list[str], rewards: list[float]) -> str | None:
    """Think text of the highest-reward rollout whose think block parses (first on ties)."""
    best, best_reward = None, float("-inf")
    for text, reward in zip(rollouts, rewards):
        think = parse_completion(text).think
        if think is not None and think.strip() and reward > best_reward:
            best, best_reward = think, reward
    return best


def render_label(example, rollouts: list[str], rewards: list[float], align: bool) -> LabelCompletion:
    """The label as the injected group member ŷ: aligned, or the dataset's own string."""
    return Align().render(raw_label(example), example, rollouts, rewards) if align else raw_label(example)


@register_strategy("align")
class Align(Strategy):
    """The label in the rollouts' template: the best rollout's think text (else a neutral sentence)
    and the answer in the canonical layout and the model's frame."""

    def render(self, label, example, rollouts, rewards) -> LabelCompletion:
        think = best_rollout_think(rollouts, rewards) or NEUTRAL_THINK
        return LabelCompletion(
            f"<think>{think}</think>", f"<answer>{format_answer(example.objects)}</answer>"
        )
