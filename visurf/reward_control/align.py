"""`align`: render the label as the policy would write it.

Without it the label is `<answer>` + the dataset's raw solution + `</answer>`: readable by the
reward, but with no think block and in the dataset's own JSON layout and frame, so its
likelihood under the policy is tiny and its gradient huge. An answer-text label (a count, a
choice, a number: rewards other than grounding) is aligned the same way: the think block, then
the answer in its canonical form (`Example.solution`: `B` for the row's `(b)`).
"""

from __future__ import annotations

from visurf.reward_control.strategy import LabelCompletion, Strategy, raw_label, register_strategy
from visurf.rewards.parsing import parse_completion

NEUTRAL_THINK = "I look at the image and find the objects that match."
NEUTRAL_THINK_TEXT = "I read the question and work out the answer."  # a row with no image


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
    and the answer in the canonical layout and the model's frame (`Example.solution`)."""

    def render(self, label, example, rollouts, rewards) -> LabelCompletion:
        neutral = NEUTRAL_THINK_TEXT if getattr(example, "image", None) == [] else NEUTRAL_THINK
        think = best_rollout_think(rollouts, rewards) or neutral
        return LabelCompletion(f"<think>{think}</think>", f"<answer>{example.solution}</answer>")
