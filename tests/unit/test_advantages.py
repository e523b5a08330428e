"""Group-relative advantages: hand-computed values in each scale mode, and the groups the label enters."""

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from visurf.algorithms import (
    SCALE_REWARDS,
    Injection,
    entering_groups,
    group_advantages,
    group_members,
    injected_advantages,
    label_rewards,
)

EPS = 1e-4
REWARDS = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])


def test_group_scaling_by_hand():
    # Group 0: mean 0.5 -> centred [0.5, -0.5, -0.5, 0.5];
    #   unbiased std = sqrt((4 * 0.25) / 3) = sqrt(1/3) = 0.5773503
    #   A = ±0.5 / (0.5773503 + 1e-4) = ±0.8658754
    # Group 1: all equal -> exactly 0.
    a = 0.8658754
    expected = torch.tensor([[a, -a, -a, a], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(group_advantages(REWARDS, "group", EPS), expected)
    assert torch.equal(group_advantages(REWARDS)[1], torch.zeros(4))  # "group" is the default


def test_batch_scaling_by_hand():
    # Mean stays per group; std over all 8 rewards [1,0,0,1,2,2,2,2]:
    #   batch mean 1.25, squared deviations 0.0625+1.5625+1.5625+0.0625+4*0.5625 = 5.5
    #   unbiased std = sqrt(5.5 / 7) = 0.8864053;  A = ±0.5 / (0.8864053 + 1e-4) = ±0.5640124
    a = 0.5640124
    expected = torch.tensor([[a, -a, -a, a], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(group_advantages(REWARDS, "batch", EPS), expected)


def test_no_scaling_by_hand():
    expected = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(group_advantages(REWARDS, "none"), expected)


def test_visurf_group_with_label_last():
    # G = 3 failed rollouts + the label (last column) scoring 3:
    #   mean 0.75 -> centred [-0.75, -0.75, -0.75, 2.25]
    #   unbiased std = sqrt((3 * 0.5625 + 5.0625) / 3) = sqrt(2.25) = 1.5
    #   A = centred / 1.5001 = [-0.4999667, -0.4999667, -0.4999667, 1.4999000]
    rewards = torch.tensor([[0.0, 0.0, 0.0, 3.0]])
    expected = torch.tensor([[-0.4999667, -0.4999667, -0.4999667, 1.4999000]])
    torch.testing.assert_close(group_advantages(rewards, "group", EPS), expected)
    # Group-relative advantages always sum to 0 within a group, label included.
    assert abs(group_advantages(rewards).sum().item()) < 1e-6


def test_group_of_one_gives_zeros_without_warning():
    rewards = torch.tensor([[3.0], [5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.std of one element would warn (and be NaN)
        for mode in SCALE_REWARDS:
            assert torch.equal(group_advantages(rewards, mode), torch.zeros(2, 1))


def test_integer_rewards_and_dtype():
    out = group_advantages(torch.tensor([[1, 0], [0, 0]]))
    assert out.dtype == torch.float32
    assert torch.equal(out[1], torch.zeros(2))
    assert group_advantages(REWARDS.double()).dtype == torch.float64


def test_invalid_inputs():
    with pytest.raises(ValueError, match="group.*batch.*none"):
        group_advantages(REWARDS, "std")
    with pytest.raises(ValueError, match="num_groups, group_size"):
        group_advantages(torch.zeros(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        group_advantages(torch.tensor([[1.0, math.nan]]))


reward_values = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(reward_values, min_size=1, max_size=6),
    group_size=st.integers(min_value=1, max_value=9),
    mode=st.sampled_from(SCALE_REWARDS),
)
def test_equal_rewards_give_exact_zeros(values, group_size, mode):
    rewards = torch.tensor(values).unsqueeze(1).expand(-1, group_size).contiguous()
    out = group_advantages(rewards, mode)
    assert torch.equal(out, torch.zeros_like(rewards))


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    num_groups=st.integers(min_value=1, max_value=5),
    group_size=st.integers(min_value=1, max_value=9),
    mode=st.sampled_from(SCALE_REWARDS),
)
def test_random_rewards_are_finite_and_centred(data, num_groups, group_size, mode):
    flat = data.draw(
        st.lists(reward_values, min_size=num_groups * group_size, max_size=num_groups * group_size)
    )
    rewards = torch.tensor(flat).reshape(num_groups, group_size)
    out = group_advantages(rewards, mode)
    assert out.shape == rewards.shape
    assert torch.isfinite(out).all()
    # Each group's advantages sum to (about) zero, relative to the group's scale.
    scale = rewards.abs().amax(dim=1) / (EPS if mode != "none" else 1.0) + 1.0
    assert (out.sum(dim=1).abs() <= 1e-4 * scale * group_size).all()


# --- the label-injection flags (docs/injection.md): who is in each group -------------------------

ROLLOUTS = torch.tensor([[0.0, 0.0, 0.0], [1.0, 3.0, 2.0]])  # group 0 failed, group 1 did not
CORRECT = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
LABEL = torch.tensor([3.0, 3.0])


def test_when_always_or_on_failure():
    assert entering_groups(CORRECT, "always").tolist() == [True, True]
    assert entering_groups(CORRECT, "on_failure").tolist() == [True, False]
    with pytest.raises(ValueError, match="when"):
        entering_groups(CORRECT, "sometimes")


def test_add_to_every_group_is_visurf_exactly():
    rollout_adv, label_adv = injected_advantages(ROLLOUTS, LABEL, torch.tensor([True, True]), "add")
    expected = group_advantages(torch.cat([ROLLOUTS, LABEL[:, None]], dim=1))
    assert torch.equal(rollout_adv, expected[:, :3]) and torch.equal(label_adv, expected[:, 3])


@pytest.mark.parametrize("scale", SCALE_REWARDS)
def test_add_on_failure_gives_each_group_its_own_members(scale):
    enters = entering_groups(CORRECT, "on_failure")
    rollout_adv, label_adv = injected_advantages(ROLLOUTS, LABEL, enters, "add", scale)
    if scale == "batch":
        # Members of the batch: 6 rollouts + group 0's label; std over all 7 rewards.
        std = torch.tensor([0.0, 0.0, 0.0, 3.0, 1.0, 3.0, 2.0]).std()
        torch.testing.assert_close(label_adv[0], (3.0 - 0.75) / (std + EPS))
        torch.testing.assert_close(rollout_adv[1], (ROLLOUTS[1] - 2.0) / (std + EPS))
    else:
        # Group 0 is {0, 0, 0, ŷ=3}: test_visurf_group_with_label_last's group.
        with_label = group_advantages(torch.tensor([[0.0, 0.0, 0.0, 3.0]]), scale)
        torch.testing.assert_close(rollout_adv[0], with_label[0, :3])
        torch.testing.assert_close(label_adv[0], with_label[0, 3])
        # Group 1 is its 3 rollouts alone, as in RLVR; no label there (advantage 0).
        torch.testing.assert_close(rollout_adv[1], group_advantages(ROLLOUTS[1:], scale)[0])
    assert label_adv[1].item() == 0.0


def test_replace_takes_the_last_rollouts_place():
    enters = torch.tensor([True, False])
    members = group_members(enters, 3, "replace")
    assert members.tolist() == [[True, True, False], [True, True, True]]
    rollout_adv, label_adv = injected_advantages(ROLLOUTS, LABEL, enters, "replace")
    with_label = group_advantages(torch.tensor([[0.0, 0.0, 3.0]]))  # {o_1, o_2, ŷ}
    torch.testing.assert_close(rollout_adv[0, :2], with_label[0, :2])
    assert rollout_adv[0, 2].item() == 0.0  # the replaced rollout is no member
    torch.testing.assert_close(label_adv[0], with_label[0, 2])
    torch.testing.assert_close(rollout_adv[1], group_advantages(ROLLOUTS[1:])[0])  # group 1 untouched
    assert label_adv[1].item() == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        group_members(enters, 1, "replace")


def test_label_reward_modes():
    scored = torch.tensor([2.5, 7.0])
    assert label_rewards(scored, "scored") is scored
    assert label_rewards(scored, "smoothed") is scored  # reward control smooths it afterwards
    assert label_rewards(scored, "maximum", 7.0).tolist() == [7.0, 7.0]
    with pytest.raises(ValueError, match="maximum"):
        label_rewards(scored, "maximum")
    with pytest.raises(ValueError, match="label_reward"):
        label_rewards(scored, "best")


@pytest.mark.parametrize(
    "field,value",
    [
        ("when", "never"),
        ("how", "swap"),
        ("label_ratio", "off"),
        ("label_reward", "max"),
        ("label_gamma", 0.0),
    ],
)
def test_injection_flags_refuse_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"injection\\.{field}="):
        Injection(**{field: value})


def test_the_run_config_check_refuses_bad_injection_values_and_on_failure_under_fsdp():
    from visurf.config.compose import compose_config
    from visurf.config.validate import ConfigError, validate

    with pytest.raises(ConfigError, match=r"injection\.label_ratio='unclipped' is invalid"):
        validate(compose_config(["injection.label_ratio=unclipped"]))
    # Under FSDP each forward pass is a collective: labels in failed groups only would give the
    # ranks different numbers of passes.
    with pytest.raises(ConfigError, match=r"injection\.when='on_failure' is invalid.*fsdp"):
        validate(compose_config(["trainer=fsdp", "injection=hpt"]))
    validate(compose_config(["trainer=fsdp", "injection=luffy"]))
    validate(compose_config(["trainer=ddp", "injection=hpt"]))
