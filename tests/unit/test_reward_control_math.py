"""Tensor-level reward control: `smooth` (group_mean and clamp) and the `no_think` mask, on
hand-made groups; the flags' one check each."""

import pytest
import torch

from visurf.algorithms import group_advantages
from visurf.reward_control import (
    RewardControl,
    clamp_label_advantage,
    group_mean_label_reward,
    mask_think_tokens,
)


def test_group_mean_sets_the_label_reward_where_a_rollout_reaches_it():
    rollouts = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],  # every rollout fails: the label keeps its reward
            [3.0, 1.0, 0.0, 0.0],  # one rollout scores above the label: mean 1.0
            [2.5, 0.5, 0.0, 1.0],  # one rollout equals the label's 2.5 exactly: reached, mean 1.0
            [2.4999, 2.0, 0.0, 0.0],  # just below: not reached
        ]
    )
    label = torch.tensor([3.0, 2.0, 2.5, 2.5])
    before = label.clone()
    out = group_mean_label_reward(rollouts, label)
    assert out.tolist() == [3.0, 1.0, 1.0, 2.5]
    assert torch.equal(label, before)  # input untouched


def test_group_mean_counts_only_the_members_of_the_group():
    # The last rollout was replaced by the label: it neither reaches nor enters the mean.
    rollouts = torch.tensor([[1.0, 0.0, 7.0], [3.0, 1.0, 7.0]])
    members = torch.tensor([[True, True, False], [True, True, False]])
    out = group_mean_label_reward(rollouts, torch.tensor([3.0, 3.0]), members)
    assert out.tolist() == [3.0, 2.0]


def test_group_mean_label_then_has_no_advantage_and_a_failing_group_keeps_its_push():
    rollouts = torch.tensor([[3.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    label = group_mean_label_reward(rollouts, torch.tensor([3.0, 3.0]))
    adv = group_advantages(torch.cat([rollouts, label[:, None]], dim=1))
    # Group 0: the label's reward is the rollouts' mean 2.0, which is also the G+1 mean: A_ŷ = 0.
    assert adv[0, -1].abs().item() < 1e-6
    # Group 1: nobody reaches 3.0; A_ŷ = G/√(G+1) / (1 + ε·…) ≈ 3/2 for G = 3.
    assert adv[1, -1].item() == pytest.approx(1.5, abs=1e-3)


def test_clamp_label_advantage_by_hand():
    adv = torch.tensor([1.5, -0.8, 0.4])
    before = adv.clone()
    assert clamp_label_advantage(adv, 1.0).tolist() == pytest.approx([1.0, 0.0, 0.4])
    assert clamp_label_advantage(adv, 0.0).tolist() == [0.0, 0.0, 0.0]
    assert torch.equal(adv, before)


def test_group_mean_shape_errors():
    with pytest.raises(ValueError, match=r"\[B, G\]"):
        group_mean_label_reward(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[B\]"):
        group_mean_label_reward(torch.zeros(2, 3), torch.zeros(3))


def test_each_smooth_mode_changes_only_its_own_quantity():
    rollouts = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    label = torch.tensor([2.0, 3.0])
    adv = torch.tensor([-0.5, 2.1])
    off = RewardControl()
    group_mean = RewardControl.of("smooth")  # group_mean is the default mode
    clamp = RewardControl.of("smooth", smooth={"mode": "clamp", "clamp": 1.0})
    assert off.label_reward(rollouts, label) is label and off.label_advantage(adv) is adv
    assert group_mean.label_reward(rollouts, label).tolist() == [2.0, 3.0]  # 3.0 >= 2.0: mean 2.0
    assert group_mean.label_reward(rollouts, torch.tensor([2.5, 3.0])).tolist() == [2.0, 3.0]
    assert group_mean.label_advantage(adv) is adv
    assert clamp.label_reward(rollouts, label) is label
    assert clamp.label_advantage(adv).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"clamp": -0.1}, "reward_control.smooth.clamp"),
        ({"clamp": float("nan")}, "reward_control.smooth.clamp"),
        ({"clamp": True}, "reward_control.smooth.clamp"),
        ({"mode": "mean"}, "reward_control.smooth.mode"),
        ({"mood": "clamp"}, "reward_control.smooth="),
    ],
)
def test_reward_control_refuses_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        RewardControl.of("smooth", smooth=kwargs)


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


def test_a_config_from_before_smooth_mode_means_the_clamp():
    from omegaconf import OmegaConf

    old = OmegaConf.create({"align": True, "no_think": True, "smooth": True, "smooth_clamp": 1.0})
    control = RewardControl.from_config(old)
    assert control.names == ("align", "no_think", "smooth") and control.strategies[-1].mode == "clamp"
    new = OmegaConf.create({**OmegaConf.to_container(old), "smooth_mode": "group_mean"})
    assert RewardControl.from_config(new).strategies[-1].mode == "group_mean"
    flags = OmegaConf.create({"align": False, "no_think": True, "smooth": False, "smooth_clamp": 1.0})
    assert RewardControl.from_config(flags).names == ("no_think",)


def test_strategies_apply_in_the_order_listed():
    """Two strategies that both change the label's advantage: the second sees the first's output."""
    clamp = {"mode": "clamp", "clamp": 1.0}
    adv = torch.tensor([-0.5, 2.1])
    one = RewardControl.of("smooth", smooth=clamp)
    assert RewardControl(one.strategies * 2).label_advantage(adv).tolist() == pytest.approx([0.0, 1.0])
