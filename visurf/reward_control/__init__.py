"""ViSurf reward control (DESIGN §2): three strategies, each its own flag.

`conf/reward_control/*.yaml` are presets of the flags: `none`, `align`, `no_think`, `smooth`, `all`.
These definitions are visurf's own (the paper's method section is not public in usable form).
"""

from __future__ import annotations

from dataclasses import dataclass

from visurf.reward_control.align import NEUTRAL_THINK, LabelCompletion, render_label
from visurf.reward_control.no_think import exempt_think_reward
from visurf.reward_control.smooth import smooth_label_advantage


@dataclass(frozen=True)
class RewardControl:
    align: bool = False  # render the label in the rollouts' completion template
    no_think: bool = False  # no think-format reward check and no think-token loss for the label
    smooth: bool = False  # clamp the label's advantage to [0, smooth_clamp]
    smooth_clamp: float = 1.0

    def __post_init__(self):
        if self.smooth_clamp < 0:
            raise ValueError(f"reward_control.smooth_clamp must be >= 0, got {self.smooth_clamp}")

    @classmethod
    def from_config(cls, cfg) -> RewardControl:
        return cls(
            align=bool(cfg.align),
            no_think=bool(cfg.no_think),
            smooth=bool(cfg.smooth),
            smooth_clamp=float(cfg.smooth_clamp),
        )


__all__ = [
    "NEUTRAL_THINK",
    "LabelCompletion",
    "RewardControl",
    "exempt_think_reward",
    "render_label",
    "smooth_label_advantage",
]
