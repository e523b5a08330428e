"""experiments/one_sign_advantages.py: the probe run with only one sign of the advantages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from visurf.algorithms import group_advantages

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_sign_keeps_that_signs_advantages_and_zeroes_the_rest():
    probe = load("one_sign_advantages")
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


def test_the_shared_patch_puts_a_one_sign_function_in_a_real_run_and_restores_the_real_one(
    tmp_path, monkeypatch
):
    """What the script's main does, with a spy in place of the partial: the stage forms its
    advantages through the patched function for the whole run, and gets its own back after."""
    import visurf.objectives.policy as policy
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # the script imports null_advantages beside it
    probe, null = load("one_sign_advantages"), load("null_advantages")
    real, seen = policy.group_advantages, []

    def spy(rewards, scale_rewards="group", **kwargs):
        advantages = probe.one_sign_group_advantages(rewards, scale_rewards, keep="negative", **kwargs)
        seen.append(advantages)
        return advantages

    with null.replaced_advantages(spy):
        summary = train(
            compose_config(["experiment=smoke", "objective=rlvr", "trainer.max_steps=2"]), tmp_path / "neg"
        )
    assert seen and all((a <= 0).all() for a in seen) and summary["eval_after"] is not None
    assert policy.group_advantages is real


def test_the_script_names_the_sign_it_needs():
    import subprocess

    done = subprocess.run(
        [sys.executable, str(EXPERIMENTS / "one_sign_advantages.py"), "experiment=smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "{positive,negative}" in done.stderr
