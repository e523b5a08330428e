"""ViSurf reward control: strategies applied to the injected label, in order (docs/reward_control.md).

Each strategy is a class in its own file, registered by name (`strategy.py` says what a strategy
is): `align` renders the label as the policy would write it, `no_think` exempts its think check
and masks its think tokens, `smooth` smooths its reward (`group_mean`) or advantage (`clamp`).
`conf/reward_control/*.yaml` are presets: the list of strategies they apply (`strategies`), and
each strategy's options under its name (`smooth: {mode, clamp}`). `RewardControl` builds them
once, checks their options, and applies every hook in turn; the policy stage only calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from visurf.reward_control.align import NEUTRAL_THINK, Align, render_label
from visurf.reward_control.no_think import NoThink, exempt_think_reward, mask_think_tokens
from visurf.reward_control.smooth import SMOOTH_MODES, Smooth, clamp_label_advantage, group_mean_label_reward
from visurf.reward_control.strategy import (
    STRATEGIES,
    LabelCompletion,
    Strategy,
    raw_label,
    register_strategy,
)

# The flags of configs written before strategies were listed, in the order they were applied.
LEGACY_FLAGS = ("align", "no_think", "smooth")


@dataclass(frozen=True)
class RewardControl:
    strategies: tuple[Strategy, ...] = ()

    @classmethod
    def of(cls, *names: str, **options: Mapping) -> RewardControl:
        """The strategies `names`, in this order, each built with `options[name]` (a mapping)."""
        built = []
        for name in names:
            if name not in STRATEGIES:
                raise ValueError(
                    f"reward_control.strategies: unknown reward-control strategy {name!r}; "
                    f"registered: {STRATEGIES.names()}"
                )
            kwargs = dict(options.get(name) or {})
            try:
                built.append(STRATEGIES.get(name)(**kwargs))
            except TypeError as err:
                raise ValueError(f"reward_control.{name}={kwargs!r} is invalid: {err}") from None
        return cls(tuple(built))

    @classmethod
    def from_config(cls, cfg) -> RewardControl:
        """From a `reward_control` preset; a config written before strategies were listed holds
        one boolean flag per strategy (and, before `smooth_mode` existed, meant the clamp)."""
        if "strategies" not in cfg:
            names = [flag for flag in LEGACY_FLAGS if cfg.get(flag)]
            smooth = {"mode": str(cfg.get("smooth_mode", "clamp")), "clamp": cfg.get("smooth_clamp", 1.0)}
            return cls.of(*names, smooth=smooth)
        names = cfg.strategies
        names = list(names) if isinstance(names, Sequence) and not isinstance(names, str) else names
        if not isinstance(names, list):
            raise ValueError(f"reward_control.strategies={names!r} is invalid: it must be a list of names")
        names = [str(name) for name in names]
        options = {name: _plain(cfg.get(name)) for name in names}
        return cls.of(*names, **options)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(type(s).name for s in self.strategies)

    def render_label(self, example, rollouts: list[str], rewards: list[float]) -> LabelCompletion:
        label = raw_label(example)
        for s in self.strategies:
            label = s.render(label, example, rollouts, rewards)
        return label

    def score_label(self, components: dict[str, float]) -> dict[str, float]:
        for s in self.strategies:
            components = s.score(components)
        return components

    def label_mask(self, mask: Tensor, think_spans: list[tuple[int, int] | None]) -> Tensor:
        for s in self.strategies:
            mask = s.loss_mask(mask, think_spans)
        return mask

    def label_reward(
        self, rollout_rewards: Tensor, label_rewards: Tensor, members: Tensor | None = None
    ) -> Tensor:
        for s in self.strategies:
            label_rewards = s.label_reward(rollout_rewards, label_rewards, members)
        return label_rewards

    def label_advantage(self, label_advantages: Tensor) -> Tensor:
        for s in self.strategies:
            label_advantages = s.label_advantage(label_advantages)
        return label_advantages


def _plain(value):
    from omegaconf import OmegaConf

    if value is None:
        return {}
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, Mapping):
        raise ValueError(f"reward_control options must be a mapping of option to value, got {value!r}")
    return value


__all__ = [
    "NEUTRAL_THINK",
    "SMOOTH_MODES",
    "STRATEGIES",
    "Align",
    "LabelCompletion",
    "NoThink",
    "RewardControl",
    "Smooth",
    "Strategy",
    "clamp_label_advantage",
    "exempt_think_reward",
    "group_mean_label_reward",
    "mask_think_tokens",
    "raw_label",
    "register_strategy",
    "render_label",
]
