"""What a reward-control strategy is: named hooks on the injected label, each a no-op by default.

A strategy overrides only the hooks it needs and registers itself by name; a preset
(`conf/reward_control/*.yaml`) lists the strategies it applies, in order, and each strategy's
options under its name. `RewardControl` (this package's `__init__`) applies them.

Hooks, in the order a policy stage calls them:
- `render(label, example, rollouts, rewards)`: the label as a completion (`LabelCompletion`);
- `score(components)`: the label's reward components as scored;
- `loss_mask(mask, think_spans)`: which of the label's tokens enter the loss, [L, C];
- `label_reward(rollout_rewards [B, G], label_rewards [B], members [B, G])`: the label's reward
  before advantages are formed (under `injection.label_reward=smoothed`);
- `label_advantage(label_advantages [B])`: the label's advantage after they are formed (likewise).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from visurf.config.registry import Registry

STRATEGIES = Registry("reward-control strategy")
register_strategy = STRATEGIES.register


@dataclass(frozen=True)
class LabelCompletion:
    think_part: str  # "<think>T</think>" or ""; no_think masks the tokens that hold it
    answer_part: str  # "<answer>JSON</answer>"

    @property
    def text(self) -> str:
        return self.think_part + self.answer_part


def raw_label(example) -> LabelCompletion:
    """The label with no strategy applied: `<answer>` + the dataset's own solution string."""
    return LabelCompletion("", f"<answer>{example.raw_solution}</answer>")


class Strategy:
    """Base class: every hook returns its input unchanged."""

    def render(self, label: LabelCompletion, example, rollouts: list[str], rewards: list[float]):
        return label

    def score(self, components: dict[str, float]) -> dict[str, float]:
        return components

    def loss_mask(self, mask: Tensor, think_spans: list[tuple[int, int] | None]) -> Tensor:
        return mask

    def label_reward(self, rollout_rewards: Tensor, label_rewards: Tensor, members: Tensor | None) -> Tensor:
        return label_rewards

    def label_advantage(self, label_advantages: Tensor) -> Tensor:
        return label_advantages
