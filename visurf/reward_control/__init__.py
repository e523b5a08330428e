"""ViSurf reward control: three strategies, each its own flag (docs/reward_control.md).

`conf/reward_control/*.yaml` are presets of the flags: `none`, `align`, `no_think`, `smooth`, `all`.
Everything reward control does lives in this package: `align.py` renders the label,
`no_think.py` exempts its think check and masks its think tokens, `smooth.py` smooths its reward
(`group_mean`) or advantage (`clamp`). `RewardControl` holds the flags, checks them once, and
applies them; the policy stage only calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from visurf.reward_control.align import NEUTRAL_THINK, LabelCompletion, render_label
from visurf.reward_control.no_think import exempt_think_reward, mask_think_tokens
from visurf.reward_control.smooth import SMOOTH_MODES, clamp_label_advantage, group_mean_label_reward


@dataclass(frozen=True)
class RewardControl:
    align: bool = False  # render the label in the rollouts' completion template
    no_think: bool = False  # no think-format reward check and no think-token loss for the label
    smooth: bool = False  # smooth the label's reward (group_mean) or advantage (clamp)
    smooth_mode: str = "group_mean"
    smooth_clamp: float = 1.0  # clamp: the label's advantage is clamped to [0, smooth_clamp]

    def __post_init__(self):
        # The one check of each bound (visurf.config.validate builds this object to run them).
        if self.smooth_mode not in SMOOTH_MODES:
            raise ValueError(
                f"reward_control.smooth_mode={self.smooth_mode!r} is invalid: it must be one of {list(SMOOTH_MODES)}"
            )
        c = self.smooth_clamp
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c < math.inf:
            raise ValueError(f"reward_control.smooth_clamp={c!r} is invalid: it must be a finite number >= 0")

    @classmethod
    def from_config(cls, cfg) -> RewardControl:
        return cls(
            align=bool(cfg.align),
            no_think=bool(cfg.no_think),
            smooth=bool(cfg.smooth),
            # A config written before smooth_mode existed meant the clamp.
            smooth_mode=str(cfg.get("smooth_mode", "clamp")),
            smooth_clamp=cfg.smooth_clamp,
        )

    def label_reward(
        self, rollout_rewards: Tensor, label_rewards: Tensor, members: Tensor | None = None
    ) -> Tensor:
        """The label's reward [B] after `smooth` in `group_mean` mode; unchanged otherwise."""
        if self.smooth and self.smooth_mode == "group_mean":
            return group_mean_label_reward(rollout_rewards, label_rewards, members)
        return label_rewards

    def label_advantage(self, label_advantages: Tensor) -> Tensor:
        """The label's advantage [B] after `smooth` in `clamp` mode; unchanged otherwise."""
        if self.smooth and self.smooth_mode == "clamp":
            return clamp_label_advantage(label_advantages, float(self.smooth_clamp))
        return label_advantages


__all__ = [
    "NEUTRAL_THINK",
    "SMOOTH_MODES",
    "LabelCompletion",
    "RewardControl",
    "clamp_label_advantage",
    "exempt_think_reward",
    "group_mean_label_reward",
    "mask_think_tokens",
    "render_label",
]
