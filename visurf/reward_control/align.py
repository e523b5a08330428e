"""`align`: render the label as the policy would write it.

Without it the label is `<answer>` + the dataset's raw solution + `</answer>`: readable by the
reward, but with no think block and in the dataset's own JSON layout and frame, so its
likelihood under the policy is tiny and its gradient huge.
"""

from __future__ import annotations

from dataclasses import dataclass

from visurf.rewards.parsing import format_answer, parse_completion

NEUTRAL_THINK = "I look at the image and find the objects that match."


@dataclass(frozen=True)
class LabelCompletion:
    think_part: str  # "<think>T</think>" or ""; no_think masks the tokens that hold it
    answer_part: str  # "<answer>JSON</answer>"

    @property
    def text(self) -> str:
        return self.think_part + self.answer_part


def best_rollout_think(rollouts: list[str], rewards: list[float]) -> str | None:
    """Think text of the highest-reward rollout whose think block parses (first on ties)."""
    best, best_reward = None, float("-inf")
    for text, reward in zip(rollouts, rewards):
        think = parse_completion(text).think
        if think is not None and think.strip() and reward > best_reward:
            best, best_reward = think, reward
    return best


def render_label(example, rollouts: list[str], rewards: list[float], align: bool) -> LabelCompletion:
    """The label as the injected group member ŷ."""
    if not align:
        return LabelCompletion("", f"<answer>{example.raw_solution}</answer>")
    think = best_rollout_think(rollouts, rewards) or NEUTRAL_THINK
    return LabelCompletion(f"<think>{think}</think>", f"<answer>{format_answer(example.objects)}</answer>")
