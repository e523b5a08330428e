"""A probe run for RL: the same run, with only its positive or only its negative advantages.

    python experiments/probes/one_sign_advantages.py positive experiment=pocket objective=rlvr optim.lr=1e-4 ...
    python experiments/probes/one_sign_advantages.py negative experiment=pocket objective=rlvr optim.lr=1e-4 ...

A GRPO step is two pushes: toward the rollouts that scored above their group's mean (positive
advantages) and away from those below it (negative). On a policy that samples its greedy answer
almost always, the two differ in kind: the rollouts above the mean are mostly that answer, whose
tokens the policy already gives probability near 1 (so their gradient is small), while those below
are the rare other answers, whose tokens it seldom samples. Everything else is the real run
(`python -m visurf.run` with the same overrides); the other sign's advantages are 0.

Each sign is an advantage estimator (`positive_only`, `negative_only`), registered here and chosen
with `objective.advantage_estimator=...`, which this script adds to the overrides.
"""

from __future__ import annotations

import sys

import torch

from visurf.algorithms import group_advantages, register_advantage_estimator

SIGNS = ("positive", "negative")


def one_sign_group_advantages(
    rewards: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4, *, keep: str
) -> torch.Tensor:
    """`group_advantages` of `rewards` [B, G] with the advantages of the other sign set to 0."""
    if keep not in SIGNS:
        raise ValueError(f"keep must be one of {SIGNS}, got {keep!r}")
    advantages = group_advantages(rewards, scale_rewards, eps)
    return advantages.clamp(min=0) if keep == "positive" else advantages.clamp(max=0)


@register_advantage_estimator("positive_only")
def positive_only(rewards: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4) -> torch.Tensor:
    return one_sign_group_advantages(rewards, scale_rewards, eps, keep="positive")


@register_advantage_estimator("negative_only")
def negative_only(rewards: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4) -> torch.Tensor:
    return one_sign_group_advantages(rewards, scale_rewards, eps, keep="negative")


if __name__ == "__main__":
    from visurf.cli.run import main

    if len(sys.argv) < 2 or sys.argv[1] not in SIGNS:
        raise SystemExit(f"usage: python {sys.argv[0]} {{positive,negative}} [overrides...]")
    sys.argv.append(f"objective.advantage_estimator={sys.argv.pop(1)}_only")
    main()
