"""A probe run for RL: the same run, with only its positive or only its negative advantages.

    python experiments/one_sign_advantages.py positive experiment=pocket objective=rlvr optim.lr=1e-4 ...
    python experiments/one_sign_advantages.py negative experiment=pocket objective=rlvr optim.lr=1e-4 ...

A GRPO step is two pushes: toward the rollouts that scored above their group's mean (positive
advantages) and away from those below it (negative). On a policy that samples its greedy answer
almost always, the two differ in kind: the rollouts above the mean are mostly that answer, whose
tokens the policy already gives probability near 1 (so their gradient is small), while those below
are the rare other answers, whose tokens it seldom samples. Everything else is the real run
(`python -m visurf.run` with the same overrides); the other sign's advantages are 0.
"""

from __future__ import annotations

import sys
from functools import partial

import torch

from visurf.algorithms import group_advantages

SIGNS = ("positive", "negative")


def one_sign_group_advantages(
    rewards: torch.Tensor, scale_rewards: str = "group", *, keep: str, **kwargs
) -> torch.Tensor:
    """`group_advantages` of `rewards` [B, G] with the advantages of the other sign set to 0."""
    if keep not in SIGNS:
        raise ValueError(f"keep must be one of {SIGNS}, got {keep!r}")
    advantages = group_advantages(rewards, scale_rewards, **kwargs)
    return advantages.clamp(min=0) if keep == "positive" else advantages.clamp(max=0)


if __name__ == "__main__":
    from null_advantages import replaced_advantages  # beside this file

    from visurf.cli.run import main

    if len(sys.argv) < 2 or sys.argv[1] not in SIGNS:
        raise SystemExit(f"usage: python {sys.argv[0]} {{positive,negative}} [overrides...]")
    keep = sys.argv.pop(1)
    with replaced_advantages(partial(one_sign_group_advantages, keep=keep)):
        main()
