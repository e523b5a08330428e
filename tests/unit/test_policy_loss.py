"""Per-token losses, aggregations and the ViSurf identities of docs/method.md at tensor level."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from visurf.algorithms import (
    AGGREGATIONS,
    PolicyLossOptions,
    aggregate,
    clipped_surrogate,
    group_advantages,
    kl_k3,
    on_policy_surrogate,
    policy_loss,
    sft_loss,
    shaped_surrogate,
)

EPS = 0.2  # eps_low = eps_high = 0.2 -> clip range [0.8, 1.2]

# A fixed B=3, T=4 batch with a ragged mask; old_logp = 0 so that ρ = exp(logp).
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
RATIOS = torch.tensor(
    [
        [1.0, 1.5, 0.5, 9.0],  # A = +1; the last position is padding
        [0.5, 1.5, 1.0, 1.0],  # A = -2; the last two are padding
        [1.0, 0.9, 1.1, 2.0],  # A = +0.5
    ]
)
ADV = torch.tensor([1.0, -2.0, 0.5])
# Per-token loss -min(ρA, clip(ρ, 0.8, 1.2)A):
#   row 0 (A=+1):   ρ=1   -> -1;   ρ=1.5 -> -min(1.5, 1.2) = -1.2 (clipped high);  ρ=0.5 -> -min(0.5, 0.8) = -0.5
#   row 1 (A=-2):   ρ=0.5 -> -min(-1.0, -1.6) = 1.6 (clipped low);  ρ=1.5 -> -min(-3.0, -2.4) = 3.0
#   row 2 (A=+0.5): -0.5, -0.45, -0.55, ρ=2 -> -min(1.0, 0.6) = -0.6 (clipped high)
# row sums -2.7, 4.6, -2.1 over 3, 2, 4 tokens -> row means -0.9, 2.3, -0.525
# grpo  = (-0.9 + 2.3 - 0.525) / 3 = 0.2916667
# bnpo  = dapo = (-2.7 + 4.6 - 2.1) / 9 = -0.2 / 9 = -0.0222222
# dr_grpo = -0.2 / (3 * 4) = -0.0166667; with max_completion_length = 5: -0.2 / 15 = -0.0133333
HAND_AGG = {"grpo": 0.2916667, "bnpo": -0.0222222, "dapo": -0.0222222, "dr_grpo": -0.0166667}


def _logp():
    return torch.log(RATIOS).clone().requires_grad_(True)


def test_clipped_surrogate_by_hand():
    logp = _logp()
    per_token, clipped = clipped_surrogate(logp, torch.zeros(3, 4), ADV, EPS, EPS)
    torch.testing.assert_close(per_token[0, :3], torch.tensor([-1.0, -1.2, -0.5]))
    torch.testing.assert_close(per_token[1, :2], torch.tensor([1.6, 3.0]))
    torch.testing.assert_close(per_token[2], torch.tensor([-0.5, -0.45, -0.55, -0.6]))
    # Clipped branch: row 0 token 1 (high, A>0), row 1 token 0 (low, A<0), row 2 token 3 (high);
    # row 0 token 3 (ρ=9) is clipped too but is padding.
    assert (clipped & MASK.bool()).nonzero().tolist() == [[0, 1], [1, 0], [2, 3]]
    # Gradient: -ρA on unclipped tokens, 0 on clipped ones.
    (per_token * MASK).sum().backward()
    expected_grad = torch.tensor([[-1.0, 0.0, -0.5, 0.0], [0.0, 3.0, 0.0, 0.0], [-0.5, -0.45, -0.55, 0.0]])
    torch.testing.assert_close(logp.grad, expected_grad)


def test_clipped_surrogate_asymmetric_clip():
    # eps_low = 0.1, eps_high = 0.3 (DAPO clip-higher): ρ = 1.25 is inside for A > 0,
    # ρ = 0.85 is outside for A < 0 -> -min(-0.85, -0.9) = 0.9, clipped.
    logp = torch.log(torch.tensor([[1.25], [0.85]]))
    per_token, clipped = clipped_surrogate(logp, torch.zeros(2, 1), torch.tensor([1.0, -1.0]), 0.1, 0.3)
    torch.testing.assert_close(per_token, torch.tensor([[-1.25], [0.9]]))
    assert clipped.tolist() == [[False], [True]]


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_aggregations_by_hand(mode):
    per_token, _ = clipped_surrogate(_logp(), torch.zeros(3, 4), ADV, EPS, EPS)
    torch.testing.assert_close(aggregate(per_token, MASK, mode), torch.tensor(HAND_AGG[mode]))
    torch.testing.assert_close(aggregate(per_token, MASK.bool(), mode), torch.tensor(HAND_AGG[mode]))


def test_dr_grpo_max_completion_length():
    per_token, _ = clipped_surrogate(_logp(), torch.zeros(3, 4), ADV, EPS, EPS)
    torch.testing.assert_close(aggregate(per_token, MASK, "dr_grpo", 5), torch.tensor(-0.0133333))
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate(per_token, MASK, "dr_grpo", 0)


def test_grpo_counts_masked_rows_as_trl_does():
    per_token, _ = clipped_surrogate(_logp(), torch.zeros(3, 4), ADV, EPS, EPS)
    mask = MASK.clone()
    mask[1] = 0  # e.g. a truncated completion under mask_truncated
    # (-0.9 + 0 + -0.525) / 3 = -0.475: the masked row adds 0 and still counts, as in TRL's
    # GRPOTrainer (mean over all rows); the batch's step shrinks instead of growing by B / B_kept.
    torch.testing.assert_close(aggregate(per_token, mask, "grpo"), torch.tensor(-0.475))


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_empty_mask_gives_zero_with_graph(mode):
    logp = _logp()
    per_token, _ = clipped_surrogate(logp, torch.zeros(3, 4), ADV, EPS, EPS)
    loss = aggregate(per_token, torch.zeros(3, 4), mode)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logp.grad, torch.zeros(3, 4))


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_global_counts_make_averaged_gradients_those_of_the_whole_batch(mode):
    """Two 'processes' with 1 and 3 rows (3 and 6 tokens) of one batch: each divides by the global
    count over the number of processes, and the mean of their gradients (what data-parallel
    training applies) is the gradient of the whole batch in one process."""
    logp, old, ref, mask, adv = _random_batch(11, b=4)
    mask[2] = 0  # a fully masked row: counted by grpo and dr_grpo, not by the token means
    whole, _ = policy_loss(
        logp,
        old,
        ref,
        adv,
        mask,
        is_label=torch.zeros(4, dtype=torch.bool),
        **_kw(aggregation=mode, beta=0.1),
    )

    def averaged_rank_gradients(**counts):
        grads = []
        for rows in (slice(0, 1), slice(1, 4)):  # what each process holds
            part = logp.detach()[rows].clone().requires_grad_(True)
            n = part.shape[0]
            kw = _kw(aggregation=mode, beta=0.1)
            loss, _ = policy_loss(
                part, old[rows], ref[rows], adv[rows], mask[rows], is_label=torch.zeros(n, dtype=torch.bool), **kw, **counts
            )  # fmt: skip
            grads.append(_grad(loss, part))
        return torch.cat(grads) / 2  # DDP: the processes' gradients summed, divided by 2

    expected = _grad(whole, logp)
    torch.testing.assert_close(
        averaged_rank_gradients(global_tokens=mask.sum(), global_rows=4, world_size=2), expected
    )
    # With each process's own counts, each process's mean counts equally: not the batch's gradient.
    assert not torch.allclose(averaged_rank_gradients(), expected)


def test_global_counts_default_to_the_batch_and_are_required_across_processes():
    per_token, _ = clipped_surrogate(_logp(), torch.zeros(3, 4), ADV, EPS, EPS)
    for mode in AGGREGATIONS:  # world size 1: the batch's own counts, passed or not, change nothing
        own = aggregate(per_token, MASK, mode, global_tokens=MASK.sum(), global_rows=3)
        assert torch.equal(own, aggregate(per_token, MASK, mode))
    with pytest.raises(ValueError, match="global_tokens"):
        aggregate(per_token, MASK, "dapo", world_size=2)
    with pytest.raises(ValueError, match="global_rows"):
        aggregate(per_token, MASK, "grpo", world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        aggregate(per_token, MASK, "grpo", world_size=0)
    # 18 tokens over 2 processes: this process divides by 9, its own count, as above.
    torch.testing.assert_close(
        aggregate(per_token, MASK, "dapo", global_tokens=18, world_size=2), torch.tensor(HAND_AGG["dapo"])
    )


def test_invalid_aggregation():
    with pytest.raises(ValueError, match="grpo.*bnpo.*dapo.*dr_grpo"):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1), "token_mean")


def test_kl_k3():
    logp = torch.tensor([0.0, math.log(2.0), -1.3])
    ref = torch.tensor([math.log(2.0), 0.0, -1.3])
    # d = ref - logp: ln2 -> 2 - ln2 - 1 = 0.3068528;  -ln2 -> 0.5 + ln2 - 1 = 0.1931472;  0 -> 0
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([0.3068528, 0.1931472, 0.0]))
    assert kl_k3(ref, ref).eq(0).all()


@settings(max_examples=50, deadline=None)
@given(
    a=st.floats(min_value=-20, max_value=0, allow_nan=False),
    b=st.floats(min_value=-20, max_value=0, allow_nan=False),
)
def test_kl_k3_nonnegative(a, b):
    kl = kl_k3(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    assert kl.item() >= 0.0
    if abs(a - b) > 1e-3:
        assert kl.item() > 0.0


def test_on_policy_surrogate_value_and_gradient():
    logp = torch.tensor([[-0.3, -2.0], [-1.0, -0.1]], requires_grad=True)
    adv = torch.tensor([1.5, -0.5])
    per_token = on_policy_surrogate(logp, adv)
    torch.testing.assert_close(per_token, torch.tensor([[-1.5, -1.5], [0.5, 0.5]]))  # value -A
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    (per_token * weights).sum().backward()
    # d/dlogp of Σ w·(-A·exp(ℓ - sg(ℓ))) = -A·w: the gradient of -A·Σ w·ℓ.
    torch.testing.assert_close(logp.grad, -adv.unsqueeze(-1) * weights)


def test_shaped_surrogate_value_and_gradient():
    # p = 0.5, 0.1, 0.9 with γ = 0.1: f = 0.5/0.6, 0.1/0.2, 0.9/1.0; loss -A·f.
    p = torch.tensor([[0.5, 0.1, 0.9]])
    logp = torch.log(p).requires_grad_(True)
    per_token = shaped_surrogate(logp, torch.tensor([2.0]), 0.1)
    torch.testing.assert_close(per_token, -2.0 * torch.tensor([[0.5 / 0.6, 0.5, 0.9]]))
    per_token.sum().backward()
    # d f / d ℓ = γ p / (p + γ)²: 0.05/0.36, 0.01/0.04, 0.09/1.0, times -A.
    torch.testing.assert_close(logp.grad, -2.0 * torch.tensor([[0.05 / 0.36, 0.25, 0.09]]))


def _label_batch():
    """Rows 0-1 rollouts, row 2 a label; ρ = 2 on the label row (its ℓ_old is below ℓ_θ)."""
    logp = torch.log(torch.tensor([[0.5, 0.4], [0.3, 0.2], [0.6, 0.05]])).requires_grad_(True)
    old = logp.detach().clone()
    old[:2] -= 0.1  # rollouts: ρ = e^0.1, inside the clip range
    old[2] -= math.log(2.0)  # label: ρ = 2, outside it
    return logp, old, torch.tensor([1.0, -1.0, 1.5]), torch.ones(3, 2), torch.tensor([False, False, True])


@pytest.mark.parametrize("ratio", ["shaped", "clipped"])
def test_label_ratio_changes_only_the_label_rows(ratio):
    logp, old, adv, mask, is_label = _label_batch()
    base, base_stats = policy_loss(logp, old, None, adv, mask, is_label=is_label, **_kw())
    other, stats = policy_loss(logp, old, None, adv, mask, is_label=is_label, **_kw(label_ratio=ratio))
    g_base, g_other = _grad(base, logp), _grad(other, logp)
    assert torch.equal(g_base[:2], g_other[:2])  # rollout rows untouched
    assert not torch.allclose(g_base[2], g_other[2])
    assert stats["clip_fraction"] == base_stats["clip_fraction"]  # a rollout statistic
    if ratio == "shaped":  # -A·f(p) / 6 tokens, gradient -A·γp/(p+γ)² / 6
        p = torch.tensor([0.6, 0.05])
        torch.testing.assert_close(g_other[2], -1.5 * 0.1 * p / (p + 0.1) ** 2 / 6)
    else:  # ρ = 2 > 1.2 with A > 0: the clipped branch, no gradient, value -1.2·A per token
        assert torch.equal(g_other[2], torch.zeros(2))
        label_only, _ = policy_loss(
            logp, old, None, adv, mask * is_label[:, None], is_label=is_label, **_kw(label_ratio=ratio)
        )
        torch.testing.assert_close(label_only, torch.tensor(-1.2 * 1.5 * 2 / 2))
    # On-policy (the default) ignores ℓ_old on the label row: gradient -A / 6 per token.
    torch.testing.assert_close(g_base[2], torch.full((2,), -1.5 / 6))


def test_clipped_label_with_one_pass_is_on_policy():
    # μ = 1: ℓ_old = ℓ_θ detached, the ratio is 1 and never clipped: the same loss and gradient.
    logp, _, adv, mask, is_label = _label_batch()
    args = (logp, logp.detach(), None, adv, mask)
    on, _ = policy_loss(*args, is_label=is_label, **_kw())
    clipped, _ = policy_loss(*args, is_label=is_label, **_kw(label_ratio="clipped"))
    assert torch.equal(on, clipped) and torch.equal(_grad(on, logp), _grad(clipped, logp))
    with pytest.raises(ValueError, match="label_ratio"):
        policy_loss(*args, is_label=is_label, **_kw(label_ratio="off_policy"))


def _kw(**over):
    kw = dict(beta=0.0, eps_low=EPS, eps_high=EPS, aggregation="bnpo")
    kw.update(over)
    return {"options": PolicyLossOptions(**kw)}


def test_policy_loss_rollouts_with_kl_by_hand():
    logp = _logp()
    ref = logp.detach() + math.log(2.0)  # k3 = 2 - ln2 - 1 = 0.3068528 on every token
    no_label = torch.zeros(3, dtype=torch.bool)
    loss, stats = policy_loss(logp, torch.zeros(3, 4), ref, ADV, MASK, is_label=no_label, **_kw(beta=0.1))
    # bnpo: -0.2/9 + 0.1 * 0.3068528 = 0.0084631
    torch.testing.assert_close(loss, torch.tensor(0.0084631))
    torch.testing.assert_close(stats["policy_loss"], torch.tensor(-0.0222222))
    torch.testing.assert_close(stats["kl_loss"], torch.tensor(0.0306853))
    torch.testing.assert_close(stats["kl"], torch.tensor(0.3068528))
    torch.testing.assert_close(stats["clip_fraction"], torch.tensor(3 / 9))
    assert stats["label_loss_share"].item() == 0.0
    assert all(not v.requires_grad for v in stats.values())


def test_policy_loss_with_label_row_by_hand():
    logp = _logp()
    is_label = torch.tensor([False, False, True])
    # Placeholders on the label row must not matter (nor poison the gradient).
    old = torch.zeros(3, 4)
    old[2] = math.nan
    ref = logp.detach().clone()
    ref[2] = math.nan
    loss, stats = policy_loss(logp, old, ref, ADV, MASK, is_label=is_label, **_kw(beta=0.1))
    # Label row (A = 0.5): -0.5 per token regardless of ρ -> row sum -2.0 over 4 tokens.
    # bnpo: (-2.7 + 4.6 - 2.0) / 9 = -0.0111111 (KL is 0 on the rollouts: ref == logp)
    torch.testing.assert_close(loss, torch.tensor(-0.1 / 9))
    # label part -2.0/9, rollout part 1.9/9 -> share 2.0 / 3.9 = 0.5128205
    torch.testing.assert_close(stats["label_loss_share"], torch.tensor(2.0 / 3.9))
    torch.testing.assert_close(stats["clip_fraction"], torch.tensor(2 / 5))  # rollout tokens only
    loss.backward()
    assert torch.isfinite(logp.grad).all()
    # Label row: -A/9 on every token, unclipped even where ρ = 2.
    torch.testing.assert_close(logp.grad[2], torch.full((4,), -0.5 / 9))
    # grpo: (-0.9 + 2.3 - 0.5) / 3 = 0.3
    loss_grpo, _ = policy_loss(logp, old, ref, ADV, MASK, is_label=is_label, **_kw(aggregation="grpo"))
    torch.testing.assert_close(loss_grpo, torch.tensor(0.3))


def test_kl_on_label_switch():
    logp = _logp()
    ref = logp.detach() + math.log(2.0)
    is_label = torch.tensor([False, False, True])
    args = (logp, torch.zeros(3, 4), ref, ADV, MASK)
    off, s_off = policy_loss(*args, is_label=is_label, **_kw(beta=0.1))
    on, s_on = policy_loss(*args, is_label=is_label, **_kw(beta=0.1, kl_on_label=True))
    # k3 = 0.3068528 per token: 5 rollout tokens without, 9 tokens with the label row, over 9.
    torch.testing.assert_close(s_off["kl_loss"], torch.tensor(0.1 * 0.3068528 * 5 / 9))
    torch.testing.assert_close(s_on["kl_loss"], torch.tensor(0.1 * 0.3068528))
    torch.testing.assert_close(on - off, torch.tensor(0.1 * 0.3068528 * 4 / 9))
    torch.testing.assert_close(s_on["kl"], s_off["kl"])  # the kl stat is over rollout tokens
    # beta == 0 or no reference: no KL in the loss.
    _, s0 = policy_loss(*args, is_label=is_label, **_kw(beta=0.0, kl_on_label=True))
    _, sn = policy_loss(logp, torch.zeros(3, 4), None, ADV, MASK, is_label=is_label, **_kw(beta=0.1))
    assert s0["kl_loss"].item() == 0.0 and sn["kl_loss"].item() == 0.0 and sn["kl"].item() == 0.0


def test_policy_loss_shape_errors():
    with pytest.raises(ValueError, match="advantages and is_label"):
        policy_loss(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            None,
            torch.zeros(3),
            torch.ones(2, 3),
            is_label=torch.zeros(2, dtype=torch.bool),
            **_kw(),
        )
    with pytest.raises(ValueError, match="aggregation must be one of"):
        policy_loss(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            None,
            torch.zeros(2),
            torch.ones(2, 3),
            is_label=torch.zeros(2, dtype=torch.bool),
            **_kw(aggregation="mean"),
        )


def test_sft_loss():
    logp = torch.tensor([[-1.0, -2.0, -9.0], [-3.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(sft_loss(logp, mask), torch.tensor(2.0))  # (1 + 2 + 3) / 3
    assert sft_loss(logp, torch.zeros(2, 3)).item() == 0.0


# --- docs/method.md identities ------------------------------------------------------------------


def _random_batch(seed, b=4, t=6):
    g = torch.Generator().manual_seed(seed)
    logp = (-3 * torch.rand(b, t, generator=g)).requires_grad_(True)
    old = logp.detach() + 0.3 * torch.randn(b, t, generator=g)
    ref = logp.detach() + 0.3 * torch.randn(b, t, generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    mask = (torch.arange(t) < lengths.unsqueeze(1)).float()
    adv = torch.randn(b, generator=g)
    return logp, old, ref, mask, adv


def _grad(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


@pytest.mark.parametrize("mode", ["grpo", "bnpo", "dapo"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identity1_label_only_equals_sft_gradient(mode, seed):
    # One label row, A = 1, no rollouts: exact for grpo (one row: sequence mean = token mean),
    # bnpo and dapo. KL (configured for rollouts only) does not touch the label.
    logp, old, ref, mask, _ = _random_batch(seed, b=1)
    loss, stats = policy_loss(
        logp,
        old,
        ref,
        torch.ones(1),
        mask,
        is_label=torch.ones(1, dtype=torch.bool),
        **_kw(beta=0.1, aggregation=mode),
    )
    assert torch.equal(_grad(loss, logp), _grad(sft_loss(logp, mask), logp))  # bit-exact
    assert stats["label_loss_share"].item() == 1.0


@pytest.mark.parametrize("mode", ["bnpo", "dapo"])
def test_identity1_many_label_rows_token_mean(mode):
    # With several (ragged) label rows the token-mean aggregations stay exact.
    logp, old, ref, mask, _ = _random_batch(3, b=4)
    is_label = torch.ones(4, dtype=torch.bool)
    loss, _ = policy_loss(logp, old, ref, torch.ones(4), mask, is_label=is_label, **_kw(aggregation=mode))
    assert torch.equal(_grad(loss, logp), _grad(sft_loss(logp, mask), logp))  # bit-exact


def test_identity1_dr_grpo_and_grpo_conditions():
    # dr_grpo is exact only with a full mask and max_completion_length = T (B·L = #tokens) ...
    logp, old, ref, _, _ = _random_batch(4, b=3)
    full = torch.ones_like(logp)
    is_label = torch.ones(3, dtype=torch.bool)
    loss, _ = policy_loss(
        logp, old, ref, torch.ones(3), full, is_label=is_label, **_kw(aggregation="dr_grpo")
    )
    assert torch.equal(_grad(loss, logp), _grad(sft_loss(logp, full), logp))  # bit-exact
    # ... and grpo with several ragged label rows weights sequences, not tokens: not the SFT gradient.
    ragged = torch.tensor([[1.0] * 6, [1.0, 0, 0, 0, 0, 0], [1.0] * 3 + [0.0] * 3])
    loss, _ = policy_loss(logp, old, ref, torch.ones(3), ragged, is_label=is_label, **_kw(aggregation="grpo"))
    assert not torch.allclose(_grad(loss, logp), _grad(sft_loss(logp, ragged), logp))


def _reference_grpo_loss(logp, old, ref, adv, mask, beta, eps_low, eps_high, mode):
    """Independent loop implementation of the RLVR loss of docs/method.md."""
    b, t = logp.shape
    rows, total, count = [], 0.0, 0
    for i in range(b):
        terms = []
        for j in range(t):
            if mask[i, j] == 0:
                continue
            rho = torch.exp(logp[i, j] - old[i, j])
            surrogate = -torch.minimum(rho * adv[i], torch.clamp(rho, 1 - eps_low, 1 + eps_high) * adv[i])
            d = ref[i, j] - logp[i, j]
            terms.append(surrogate + beta * (torch.exp(d) - d - 1))
        if terms:
            rows.append(sum(terms) / len(terms))
            total = total + sum(terms)
            count += len(terms)
    if mode == "grpo":
        return sum(rows) / b  # every row counts, a fully masked one as 0
    if mode in ("bnpo", "dapo"):
        return total / count
    return total / (b * t)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_identity2_no_labels_equals_rlvr(mode):
    logp, old, ref, mask, adv = _random_batch(5)
    kw = _kw(beta=0.05, eps_low=0.1, eps_high=0.15, aggregation=mode)
    loss, _ = policy_loss(logp, old, ref, adv, mask, is_label=torch.zeros(4, dtype=torch.bool), **kw)
    expected = _reference_grpo_loss(logp, old, ref, adv, mask, 0.05, 0.1, 0.15, mode)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(_grad(loss, logp), _grad(expected, logp))


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_identity2_adding_then_removing_labels(mode):
    logp, old, ref, mask, adv = _random_batch(6, b=6)
    n_roll = 4
    kw = _kw(beta=0.05, aggregation=mode)
    rollouts_only, _ = policy_loss(
        logp[:n_roll], old[:n_roll], ref[:n_roll], adv[:n_roll], mask[:n_roll],
        is_label=torch.zeros(n_roll, dtype=torch.bool), **kw,
    )  # fmt: skip
    is_label = torch.tensor([False] * n_roll + [True] * 2)
    with_labels, stats = policy_loss(logp, old, ref, adv, mask, is_label=is_label, **kw)
    assert 0.0 < stats["label_loss_share"].item() < 1.0
    assert not torch.allclose(with_labels, rollouts_only)
    # Removing the label rows again (here: by slicing the batch) restores the rollout loss.
    removed, _ = policy_loss(
        logp[:n_roll], old[:n_roll], ref[:n_roll], adv[:n_roll], mask[:n_roll],
        is_label=is_label[:n_roll], **kw,
    )  # fmt: skip
    assert torch.equal(removed, rollouts_only)
    # Masking the label rows out is the same thing for the token means, which do not count rows.
    if mode in ("bnpo", "dapo"):
        masked = mask.clone()
        masked[n_roll:] = 0
        masked_loss, _ = policy_loss(logp, old, ref, adv, masked, is_label=is_label, **kw)
        torch.testing.assert_close(masked_loss, rollouts_only)
        torch.testing.assert_close(_grad(masked_loss, logp)[:n_roll], _grad(rollouts_only, logp)[:n_roll])


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_identity3_equal_rewards_leave_only_kl(mode):
    # Two ViSurf groups of G = 2 rollouts + label (last), every member with the same reward.
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    adv = group_advantages(rewards).reshape(-1)
    assert torch.equal(adv, torch.zeros(6))
    logp, old, ref, mask, _ = _random_batch(7, b=6)
    is_label = torch.tensor([False, False, True, False, False, True])
    beta = 0.07
    loss, stats = policy_loss(
        logp, old, ref, adv, mask, is_label=is_label, **_kw(beta=beta, aggregation=mode)
    )
    kl_only = aggregate(beta * kl_k3(logp, ref) * (~is_label).unsqueeze(-1), mask, mode)
    torch.testing.assert_close(loss, kl_only)
    torch.testing.assert_close(_grad(loss, logp), _grad(kl_only, logp))
    assert stats["policy_loss"].abs().item() == 0.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_labels=st.integers(0, 3),
    mode=st.sampled_from(AGGREGATIONS),
    kl_on_label=st.booleans(),
)
def test_label_loss_share_in_unit_interval(seed, n_labels, mode, kl_on_label):
    logp, old, ref, mask, adv = _random_batch(seed, b=5)
    is_label = torch.arange(5) >= 5 - n_labels
    loss, stats = policy_loss(
        logp,
        old,
        ref,
        adv,
        mask,
        is_label=is_label,
        **_kw(beta=0.1, aggregation=mode, kl_on_label=kl_on_label),
    )
    share = stats["label_loss_share"].item()
    assert 0.0 <= share <= 1.0
    if n_labels == 0:
        assert share == 0.0
    assert 0.0 <= stats["clip_fraction"].item() <= 1.0
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in stats.values())
