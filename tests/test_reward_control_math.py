"""Tensor-level reward control (DESIGN §2): the `smooth` clamp and the `no_think` mask."""

import pytest
import torch

from visurf.algorithms import clamp_label_advantage, group_advantages, mask_think_tokens


def test_clamp_label_advantage_last_column_only():
    adv = torch.tensor([[-0.5, -0.5, -0.5, 1.5], [0.5, 0.5, -0.3, -0.8], [0.2, -0.1, 0.3, 0.4]])
    before = adv.clone()
    out = clamp_label_advantage(adv, 1.0)
    # Label column [1.5, -0.8, 0.4] -> [1.0 (upper clamp), 0.0 (lower clamp), 0.4 (inside)].
    expected = torch.tensor([[-0.5, -0.5, -0.5, 1.0], [0.5, 0.5, -0.3, 0.0], [0.2, -0.1, 0.3, 0.4]])
    assert torch.equal(out, expected)
    assert torch.equal(adv, before)  # input untouched


def test_clamp_zero_and_all_failed_group():
    # All rollouts fail, the label succeeds: A_label = 2.25 / 1.5001 ≈ 1.4999 (see test_advantages).
    adv = group_advantages(torch.tensor([[0.0, 0.0, 0.0, 3.0]]))
    assert torch.equal(clamp_label_advantage(adv, 1.0)[0, -1], torch.tensor(1.0))
    assert torch.equal(clamp_label_advantage(adv, 0.0)[0, -1], torch.tensor(0.0))
    assert torch.equal(clamp_label_advantage(adv, 1.0)[0, :-1], adv[0, :-1])


def test_clamp_errors():
    with pytest.raises(ValueError, match="smooth clamp"):
        clamp_label_advantage(torch.zeros(2, 3), -0.1)
    with pytest.raises(ValueError, match="G\\+1"):
        clamp_label_advantage(torch.zeros(3), 1.0)


def test_mask_think_tokens():
    mask = torch.ones(3, 6)
    mask[1, 4:] = 0
    before = mask.clone()
    out = mask_think_tokens(mask, [(0, 2), None, (1, 10)])
    expected = torch.tensor(
        [
            [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],  # [0, 2) masked
            [1.0, 1.0, 1.0, 1.0, 0.0, 0.0],  # None: unchanged (padding stays padding)
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # [1, 10) cut at T = 6
        ]
    )
    assert torch.equal(out, expected)
    assert torch.equal(mask, before)


def test_mask_think_tokens_bool_and_empty_span():
    mask = torch.ones(2, 3, dtype=torch.bool)
    out = mask_think_tokens(mask, [(1, 1), (2, 3)])
    assert out.dtype == torch.bool
    assert out.tolist() == [[True, True, True], [True, True, False]]


def test_mask_think_tokens_errors():
    mask = torch.ones(2, 4)
    with pytest.raises(ValueError, match="one think span"):
        mask_think_tokens(mask, [None])
    with pytest.raises(ValueError, match="start <= end"):
        mask_think_tokens(mask, [(3, 1), None])
    with pytest.raises(ValueError, match="start <= end"):
        mask_think_tokens(mask, [(-1, 2), None])
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        mask_think_tokens(torch.ones(4), [None] * 4)
