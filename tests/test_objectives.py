"""The objectives on the real tiny Qwen2.5-VL: docs/method.md's identities on model gradients,
reward-control flags, and stage schedules."""

from __future__ import annotations

import copy

import pytest
import torch

from visurf.algorithms import aggregate, kl_k3, policy_loss, sft_loss
from visurf.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import load_policy
from visurf.module import PostTrainModule
from visurf.objectives import PolicyStage, SFTStage, build_schedule
from visurf.reward_control import RewardControl
from visurf.rewards import REWARDS, build_reward, register_reward
from visurf.rollout import token_logps


def make_module(*overrides: str):
    cfg = compose_config(["experiment=smoke", *overrides])
    policy, processor = load_policy(cfg.model)
    module = PostTrainModule(cfg, policy, processor, build_reward(cfg.reward.name), build_schedule(cfg))
    return cfg, module


@pytest.fixture(scope="module")
def examples(visurf_cache):
    cfg = compose_config(["experiment=smoke"])
    return load_examples(cfg.data, 112, "train")[:3]


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_grads(a: dict, b: dict, atol: float = 0.0):
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], atol=atol, rtol=1e-5 if atol else 0.0), name


def test_identity_1_label_only_with_unit_advantage_is_sft(examples):
    """No rollouts and A_ŷ = 1: the ViSurf gradient equals the SFT gradient."""
    _, module = make_module()
    exp = SFTStage().experience(module, examples)
    model = module.policy

    model.zero_grad()
    sft_loss(token_logps(model, exp.seqs), exp.loss_mask).backward()
    g_sft = grads(model)

    model.zero_grad()
    logp = token_logps(model, exp.seqs)
    n = logp.shape[0]
    loss, _ = policy_loss(
        logp,
        logp.detach(),
        None,
        torch.ones(n),
        exp.loss_mask,
        is_label=torch.ones(n, dtype=torch.bool),
        beta=0.0,
        eps_low=0.2,
        eps_high=0.2,
        aggregation="bnpo",
    )
    loss.backward()
    assert_same_grads(g_sft, grads(model), atol=1e-7)


def test_identity_2_visurf_without_injection_is_rlvr(examples):
    """Label injection off: same rollouts give the same loss and gradient as RLVR."""
    results = []
    for overrides in (["objective=rlvr"], ["objective=visurf", "objective.stages.0.inject_label=false"]):
        cfg, module = make_module(*overrides, "rollout.num_generations=3")
        stage = module.schedule.at(0)
        torch.manual_seed(7)
        exp = stage.experience(module, examples)
        module.policy.zero_grad()
        loss, _ = stage.loss(module, exp)
        loss.backward()
        results.append((exp.seqs.ids, loss.item(), grads(module.policy)))
    (ids_a, loss_a, g_a), (ids_b, loss_b, g_b) = results
    assert torch.equal(ids_a, ids_b)
    assert loss_a == loss_b
    assert_same_grads(g_a, g_b)


@pytest.fixture
def constant_reward():
    @register_reward("test_constant")
    class Constant:
        components = ("think_format",)

        def __call__(self, completion, solution, width, height):
            return {"think_format": 1.0, "total": 1.0, "correct": 0.0}

    yield "test_constant"
    REWARDS.pop("test_constant")


def test_identity_3_equal_rewards_leave_only_the_kl_term(examples, constant_reward):
    """Every member of every group has the same reward: advantages are 0, only β·KL remains."""
    cfg, module = make_module(
        "objective=visurf",
        "reward_control=none",
        "objective.beta=0.1",
        "rollout.num_generations=3",
        f"reward.name={constant_reward}",
    )
    module.reward_fn = build_reward(constant_reward)
    # A reference that differs from the policy, so the KL term is not zero.
    module.set_reference(copy.deepcopy(module.policy).requires_grad_(False))
    with torch.no_grad():
        for p in module.reference.parameters():
            p.add_(0.01 * torch.randn_like(p))
    stage = module.schedule.at(0)
    torch.manual_seed(3)
    exp = stage.experience(module, examples)
    assert torch.count_nonzero(exp.advantages) == 0 and not torch.isnan(exp.advantages).any()

    module.policy.zero_grad()
    loss, stats = stage.loss(module, exp)
    loss.backward()
    g_loss = grads(module.policy)

    module.policy.zero_grad()
    logp = token_logps(module.policy, exp.seqs)
    on_rollouts = (~exp.is_label).float()[:, None]  # kl_on_label=false: the label rows carry 0
    kl_only = aggregate(0.1 * kl_k3(logp, exp.ref_logp) * on_rollouts, exp.loss_mask, "grpo")
    kl_only.backward()
    assert float(loss) == pytest.approx(float(kl_only), abs=1e-6) and float(loss) > 0
    assert_same_grads(g_loss, grads(module.policy), atol=1e-7)


def collect(examples, control: RewardControl, g: int = 3, seed: int = 11):
    cfg, module = make_module("objective=visurf", f"rollout.num_generations={g}")
    stage = PolicyStage(cfg.objective, cfg.rollout, control, inject_label=True)
    torch.manual_seed(seed)
    return stage.experience(module, examples), module


def label_rows(exp):
    return exp.is_label.nonzero().squeeze(-1)


def rollout_rows(exp):
    return (~exp.is_label).nonzero().squeeze(-1)


def test_align_changes_only_the_rendered_label(examples):
    plain, module = collect(examples, RewardControl())
    aligned, _ = collect(examples, RewardControl(align=True))
    r = rollout_rows(plain)
    w = min(plain.seqs.ids.shape[1], aligned.seqs.ids.shape[1])
    assert torch.equal(plain.seqs.ids[r][:, :w], aligned.seqs.ids[r][:, :w])  # same rollouts
    decode = module.processor.decode
    for ex, row_p, row_a, m_p, m_a in zip(
        examples,
        plain.seqs.ids[label_rows(plain)],
        aligned.seqs.ids[label_rows(aligned)],
        plain.seqs.mask[label_rows(plain)],
        aligned.seqs.mask[label_rows(aligned)],
    ):
        text_p, text_a = decode(row_p[m_p > 0]), decode(row_a[m_a > 0])
        assert text_p == f"<answer>{ex.raw_solution}</answer>"  # the dataset's own layout, no think
        assert text_a.startswith("<think>") and text_a.endswith(f"<answer>{ex.solution}</answer>")


def test_no_think_exempts_the_label_and_masks_its_think_tokens(examples):
    aligned, _ = collect(examples, RewardControl(align=True))
    exempt, module = collect(examples, RewardControl(align=True, no_think=True))
    lab = label_rows(aligned)
    # Same sequences; the label's think tokens leave the loss mask, nothing else does.
    assert torch.equal(aligned.seqs.ids, exempt.seqs.ids)
    diff = aligned.loss_mask != exempt.loss_mask
    assert diff.any() and set(diff.any(-1).nonzero().squeeze(-1).tolist()) <= set(lab.tolist())
    for row, ex in zip(lab, examples):
        ids, mask = exempt.seqs.ids[row], exempt.seqs.mask[row]
        text = module.processor.decode(ids[mask > 0])
        answer = f"<answer>{ex.solution}</answer>"
        kept = module.processor.decode(ids[exempt.loss_mask[row] > 0])
        dropped = module.processor.decode(ids[(mask > 0) & (exempt.loss_mask[row] == 0)])
        # The kept tokens are answer text only; at most the seam token (`><`) is lost to the mask.
        assert text == dropped + kept and answer.endswith(kept) and len(kept) >= len(answer) - 1


def test_the_label_is_tokenized_as_a_rollout_of_its_text_would_be(examples):
    """The label's ids are its whole text's tokenization, not its pieces' (no seam at `</think><answer>`)."""
    exp, module = collect(examples, RewardControl(align=True, no_think=True))
    proc = module.processor
    for row in label_rows(exp):
        ids = exp.seqs.ids[row][exp.seqs.mask[row] > 0].tolist()
        assert ids == proc.completion_ids([proc.decode(ids)])[0]
    # Without align the label has no think block: the mask is unchanged, its reward gains the think term.
    plain, _ = collect(examples, RewardControl())
    plain_exempt, _ = collect(examples, RewardControl(no_think=True))
    assert torch.equal(plain.loss_mask, plain_exempt.loss_mask)
    assert plain_exempt.metrics["label/reward"] == pytest.approx(plain.metrics["label/reward"] + 1.0)
    assert plain_exempt.metrics["reward"] == plain.metrics["reward"]


def test_smooth_clamps_only_the_label_advantage(examples):
    raw, _ = collect(examples, RewardControl())
    clamp = 0.25
    smooth, _ = collect(examples, RewardControl(smooth=True, smooth_clamp=clamp))
    r, lab = rollout_rows(raw), label_rows(raw)
    assert torch.equal(raw.advantages[r], smooth.advantages[r])
    assert torch.equal(smooth.advantages[lab], raw.advantages[lab].clamp(0.0, clamp))
    assert torch.equal(raw.loss_mask, smooth.loss_mask)


def test_sft_rlvr_schedule_switches_stage_at_the_fraction():
    cfg = compose_config(["objective=sft_rlvr", "trainer.max_steps=10"])
    schedule = build_schedule(cfg)
    kinds = [schedule.at(s).kind for s in range(10)]
    assert kinds == ["sft"] * 5 + ["policy"] * 5
    assert not schedule.at(9).inject_label
