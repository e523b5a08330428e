"""experiments/probes/one_sign_advantages.py: the probe run with only one sign of the advantages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from experiments.probes import one_sign_advantages
from visurf.algorithms import group_advantages

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "probes"


def test_one_sign_keeps_that_signs_advantages_and_zeroes_the_rest():
    probe = one_sign_advantages
    rewards = torch.tensor([[0.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    # group 0: mean 0.75, std (unbiased) 0.5: advantages -1.5, 0.5, 0.5, 0.5; group 1: no spread
    positive = probe.one_sign_group_advantages(rewards, "group", keep="positive")
    negative = probe.one_sign_group_advantages(rewards, "group", keep="negative")
    torch.testing.assert_close(positive[0], torch.tensor([0.0, 0.5, 0.5, 0.5]), atol=1e-3, rtol=0)
    torch.testing.assert_close(negative[0], torch.tensor([-1.5, 0.0, 0.0, 0.0]), atol=1e-3, rtol=0)
    assert torch.equal(positive + negative, group_advantages(rewards, "group"))  # the two halves
    assert positive[1].abs().sum() == 0 and negative[1].abs().sum() == 0
    with pytest.raises(ValueError, match="keep must be one of"):
        probe.one_sign_group_advantages(rewards, keep="both")


def test_a_one_sign_estimator_drives_a_real_run_when_named(tmp_path):
    """What the script's main does: it names its estimator, and the stage forms every group's
    advantages with it (here a spy around the negative one records them)."""
    from visurf.algorithms import ADVANTAGE_ESTIMATORS
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    assert one_sign_advantages.negative_only  # the script registers its estimators when imported
    negative, seen = ADVANTAGE_ESTIMATORS.get("negative_only"), []

    def spy(rewards, scale_rewards="group", eps=1e-4):
        seen.append(negative(rewards, scale_rewards, eps))
        return seen[-1]

    ADVANTAGE_ESTIMATORS.register("negative_spy")(spy)
    try:
        cfg = compose_config(
            [
                "experiment=smoke",
                "objective=rlvr",
                "trainer.max_steps=2",
                "objective.advantage_estimator=negative_spy",
            ]
        )
        summary = train(cfg, tmp_path / "neg")
    finally:
        ADVANTAGE_ESTIMATORS.remove("negative_spy")
    assert seen and all((a <= 0).all() for a in seen) and summary["eval_after"] is not None


def test_the_script_names_the_sign_it_needs():
    import subprocess

    done = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "one_sign_advantages.py"), "experiment=smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "{positive,negative}" in done.stderr
