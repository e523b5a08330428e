"""A control run for RL: the same run, with each group's advantages shuffled among its members.

    python experiments/null_advantages.py experiment=pocket objective=rlvr optim.lr=1e-4 ...

Everything else is the real run (`python -m visurf.run` with the same overrides): the rollouts,
the advantages' sizes and the optimiser are unchanged, only which rollout gets which advantage
is random. What such a run does to accuracy is what the update's size does on its own; a real
run that loses as much is losing to the size of its steps, not to what its rewards ask for.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from visurf.algorithms import group_advantages


def shuffled_group_advantages(rewards: torch.Tensor, scale_rewards: str = "group", **kwargs) -> torch.Tensor:
    """`group_advantages` of `rewards` [B, G], each row's advantages permuted at random."""
    advantages = group_advantages(rewards, scale_rewards, **kwargs)
    order = torch.argsort(torch.rand(advantages.shape), dim=-1)
    return advantages.gather(-1, order)


@contextmanager
def replaced_advantages(advantages_fn):
    """Within the block, the policy stage forms its advantages with `advantages_fn` (the
    signature of `visurf.algorithms.group_advantages`)."""
    import visurf.objectives.policy as policy

    real = policy.group_advantages
    policy.group_advantages = advantages_fn  # the stage looks it up at call time
    try:
        yield
    finally:
        policy.group_advantages = real


def shuffled_advantages():
    """Within the block, the policy stage forms its advantages with `shuffled_group_advantages`."""
    return replaced_advantages(shuffled_group_advantages)


if __name__ == "__main__":
    from visurf.cli.run import main

    with shuffled_advantages():
        main()
