"""A control run for RL: the same run, with each group's advantages shuffled among its members.

    python experiments/probes/null_advantages.py experiment=pocket objective=rlvr optim.lr=1e-4 ...

Everything else is the real run (`python -m visurf.run` with the same overrides): the rollouts,
the advantages' sizes and the optimiser are unchanged, only which rollout gets which advantage
is random. What such a run does to accuracy is what the update's size does on its own; a real
run that loses as much is losing to the size of its steps, not to what its rewards ask for.

The shuffled advantages are an advantage estimator of their own (`shuffled`), registered here and
chosen with `objective.advantage_estimator=shuffled`, which this script adds to the overrides.
"""

from __future__ import annotations

import sys

import torch

from visurf.algorithms import group_advantages, register_advantage_estimator


@register_advantage_estimator("shuffled")
def shuffled_group_advantages(
    rewards: torch.Tensor, scale_rewards: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """`group_advantages` of `rewards` [B, G], each row's advantages permuted at random."""
    advantages = group_advantages(rewards, scale_rewards, eps)
    order = torch.argsort(torch.rand(advantages.shape), dim=-1)
    return advantages.gather(-1, order)


if __name__ == "__main__":
    from visurf.cli.run import main

    sys.argv.append("objective.advantage_estimator=shuffled")
    main()
