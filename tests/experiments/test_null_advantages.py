"""experiments/probes/null_advantages.py: the control run whose advantages are shuffled within groups."""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.probes import null_advantages
from visurf.algorithms import group_advantages

ROOT = Path(__file__).resolve().parents[2]


def test_each_group_keeps_its_advantages_in_a_random_order():
    torch.manual_seed(0)
    rewards = torch.tensor([[0.0, 1.0, 2.0, 7.0], [5.0, 5.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]])
    real = group_advantages(rewards, "group")
    orders = set()
    for _ in range(20):
        null = null_advantages.shuffled_group_advantages(rewards, "group")
        # same multiset of advantages per group (so the step's size is the real one's) ...
        assert torch.equal(null.sort(-1).values, real.sort(-1).values)
        orders.add(tuple(null[0].tolist()))
    # ... handed to the members in an order that changes from call to call
    assert len(orders) > 1


def test_a_null_run_trains_with_shuffled_advantages(tmp_path):
    """The script's estimator, chosen by name in a real run: the stage forms its advantages with it."""
    from visurf.algorithms import ADVANTAGE_ESTIMATORS
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    calls = []
    shuffle = ADVANTAGE_ESTIMATORS.get("shuffled")  # registered when the script was imported
    assert shuffle.__code__.co_filename == null_advantages.shuffled_group_advantages.__code__.co_filename

    def spy(rewards, scale_rewards="group", eps=1e-4):
        calls.append(rewards.shape)
        return shuffle(rewards, scale_rewards, eps)

    ADVANTAGE_ESTIMATORS.register("shuffled_spy")(spy)
    try:
        cfg = compose_config(
            [
                "experiment=smoke",
                "objective=rlvr",
                "trainer.max_steps=2",
                "objective.advantage_estimator=shuffled_spy",
            ]
        )
        summary = train(cfg, tmp_path / "null")
    finally:
        ADVANTAGE_ESTIMATORS.remove("shuffled_spy")
    assert calls and all(len(shape) == 2 for shape in calls)  # the stage formed its advantages so
    assert summary["eval_after"] is not None
