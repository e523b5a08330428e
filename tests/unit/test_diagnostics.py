"""The per-step spread diagnostics, on hand-computed groups."""

from __future__ import annotations

import math

import pytest
import torch

from visurf.objectives.diagnostics import sampled_entropy, spread_diagnostics

NAMES = ["think_format", "accuracy"]


def groups():
    # group 0: totals 1, 4 (spread from accuracy only); group 1: totals 0, 1 (from think only);
    # group 2: both members score 1 + 3 (no spread).
    components = torch.tensor(
        [
            [[1.0, 0.0], [1.0, 3.0]],
            [[0.0, 0.0], [1.0, 0.0]],
            [[1.0, 3.0], [1.0, 3.0]],
        ]
    )
    correct = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    return components, correct


def test_group_shares_and_component_spread_by_hand():
    out = spread_diagnostics(*groups(), NAMES)
    assert out["groups/zero_spread"] == pytest.approx(1 / 3)
    assert out["groups/all_correct"] == pytest.approx(1 / 3)
    assert out["groups/none_correct"] == pytest.approx(1 / 3)
    # Sample std of [0, 3] is 3/sqrt(2); of [0, 1] is 1/sqrt(2); averaged over the 3 groups.
    assert out["reward_std/accuracy"] == pytest.approx(3 / math.sqrt(2) / 3)
    assert out["reward_std/think_format"] == pytest.approx(1 / math.sqrt(2) / 3)
    # Within-group variance of the total: 4.5 (group 0) + 0.5 (group 1); accuracy carries 4.5 of it.
    assert out["spread_share/accuracy"] == pytest.approx(0.9)
    assert out["spread_share/think_format"] == pytest.approx(0.1)


def test_shares_sum_to_one_even_when_components_move_against_each_other():
    torch.manual_seed(0)
    components = torch.randint(0, 3, (16, 8, 4)).float()
    out = spread_diagnostics(components, torch.zeros(16, 8), ["a", "b", "c", "d"])
    shares = [out[f"spread_share/{k}"] for k in "abcd"]
    assert sum(shares) == pytest.approx(1.0)
    # A component that rises when the total falls has a negative share.
    anti = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    out = spread_diagnostics(anti, torch.zeros(1, 2), ["format", "accuracy"])
    assert out["spread_share/format"] < 0 < out["spread_share/accuracy"]


def test_no_spread_anywhere_gives_zero_shares_not_nan():
    components = torch.ones(2, 4, 2)
    out = spread_diagnostics(components, torch.ones(2, 4), NAMES)
    assert out["groups/zero_spread"] == 1.0 and out["groups/all_correct"] == 1.0
    assert out["spread_share/accuracy"] == 0.0 and out["reward_std/accuracy"] == 0.0


def test_wrong_shape_is_refused_naming_it():
    with pytest.raises(ValueError, match="components must be"):
        spread_diagnostics(torch.zeros(2, 4), torch.zeros(2, 4), NAMES)


def test_sampled_entropy_is_the_mean_negative_logp_of_real_tokens():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -7.0, -7.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert sampled_entropy(logp, mask) == pytest.approx((1 + 2 + 0.5) / 3)


def test_sampled_entropy_estimates_the_true_entropy_of_a_distribution():
    torch.manual_seed(0)
    probs = torch.tensor([0.7, 0.2, 0.1])
    draws = torch.multinomial(probs, 200_000, replacement=True)
    logp = probs.log()[draws][None, :]
    true = -(probs * probs.log()).sum().item()
    assert sampled_entropy(logp, torch.ones_like(logp)) == pytest.approx(true, abs=5e-3)
