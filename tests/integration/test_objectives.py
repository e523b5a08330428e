"""The objectives on the real tiny Qwen2.5-VL: docs/method.md's identities on model gradients,
reward-control flags, and stage schedules."""

from __future__ import annotations

import copy

import pytest
import torch

from visurf.algorithms import (
    Injection,
    PolicyLossOptions,
    aggregate,
    group_advantages,
    kl_k3,
    policy_loss,
    sft_loss,
)
from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import load_policy
from visurf.objectives import Experience, PolicyStage, SFTStage, build_schedule
from visurf.reward_control import RewardControl
from visurf.rewards import REWARDS, build_reward, register_reward
from visurf.rollout import token_logps
from visurf.training.module import PostTrainModule


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
        torch.ones(n, dtype=torch.bool),
        PolicyLossOptions(beta=0.0, eps_low=0.2, eps_high=0.2, aggregation="bnpo"),
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


def test_a_policy_stage_scores_its_rollouts_at_the_sampling_temperature(examples):
    """Loss, ratio and KL reference all score log π_T, the distribution the rollouts came from."""
    _, module = make_module(
        "objective=visurf", "rollout.num_generations=3", "rollout.temperature=0.5", "objective.beta=0.1"
    )
    stage = module.schedule.at(0)
    stage.passes = 2  # so the stage keeps ℓ_old apart from ℓ_θ
    torch.manual_seed(3)
    exp = stage.experience(module, examples)
    with torch.no_grad():
        tempered = token_logps(module.policy, exp.seqs, temperature=0.5)
        plain = token_logps(module.policy, exp.seqs)
    mask = exp.loss_mask > 0
    assert (tempered - plain)[mask].abs().max() > 1e-3
    torch.testing.assert_close(exp.old_logp[mask], tempered[mask], atol=1e-6, rtol=0)
    torch.testing.assert_close(
        exp.ref_logp[mask], tempered[mask], atol=1e-6, rtol=0
    )  # the reference is the policy
    _, stats = stage.loss(module, exp)
    assert abs(stats["kl"]) < 1e-6  # the loss scores at 0.5 as well: else the KL to the reference is not 0


@pytest.fixture
def constant_reward():
    @register_reward("test_constant")
    class Constant:
        components = ("think_format",)

        def __call__(self, completion, solution, width, height):
            return {"think_format": 1.0, "total": 1.0, "correct": 0.0}

    yield "test_constant"
    REWARDS.remove("test_constant")


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
    kl_only = aggregate(
        0.1 * kl_k3(logp, exp.ref_logp) * on_rollouts, exp.loss_mask, cfg.objective.loss_aggregation
    )
    kl_only.backward()
    assert float(loss) == pytest.approx(float(kl_only), abs=1e-6) and float(loss) > 0
    assert_same_grads(g_loss, grads(module.policy), atol=1e-7)


def collect(examples, control: RewardControl, g: int = 3, seed: int = 11, injection=None, reward=None):
    cfg, module = make_module("objective=visurf", f"rollout.num_generations={g}")
    if reward is not None:
        module.reward_fn = build_reward(reward)
    stage = PolicyStage(cfg.objective, cfg.rollout, control, True, injection)
    torch.manual_seed(seed)
    return stage.experience(module, examples), module


def label_rows(exp):
    return exp.is_label.nonzero().squeeze(-1)


def rollout_rows(exp):
    return (~exp.is_label).nonzero().squeeze(-1)


def test_align_changes_only_the_rendered_label(examples):
    plain, module = collect(examples, RewardControl())
    aligned, _ = collect(examples, RewardControl.of("align"))
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
    aligned, _ = collect(examples, RewardControl.of("align"))
    exempt, module = collect(examples, RewardControl.of("align", "no_think"))
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
    exp, module = collect(examples, RewardControl.of("align", "no_think"))
    proc = module.processor
    for row in label_rows(exp):
        ids = exp.seqs.ids[row][exp.seqs.mask[row] > 0].tolist()
        assert ids == proc.completion_ids([proc.decode(ids)])[0]
    # Without align the label has no think block: the mask is unchanged, its reward gains the think term.
    plain, _ = collect(examples, RewardControl())
    plain_exempt, _ = collect(examples, RewardControl.of("no_think"))
    assert torch.equal(plain.loss_mask, plain_exempt.loss_mask)
    assert plain_exempt.metrics["label/reward"] == pytest.approx(plain.metrics["label/reward"] + 1.0)
    assert plain_exempt.metrics["reward"] == plain.metrics["reward"]


def test_smooth_clamp_clamps_only_the_label_advantage(examples):
    raw, _ = collect(examples, RewardControl())
    clamp = 0.25
    smooth, _ = collect(examples, RewardControl.of("smooth", smooth={"mode": "clamp", "clamp": clamp}))
    r, lab = rollout_rows(raw), label_rows(raw)
    assert torch.equal(raw.advantages[r], smooth.advantages[r])
    assert torch.equal(smooth.advantages[lab], raw.advantages[lab].clamp(0.0, clamp))
    assert torch.equal(raw.loss_mask, smooth.loss_mask)


@pytest.fixture
def length_reward():
    """Rollouts score len(text) % 4 (correct at 3), the plain label (`<answer>…`) scores 3: with
    the tests' seed, group 0 has a rollout that reaches the label, groups 1 and 2 fail."""

    @register_reward("test_length")
    class Length:
        components = ("think_format",)
        max_total = 5.0

        def __call__(self, completion, solution, width, height):
            total = 3.0 if completion.startswith("<answer>") else float(len(completion) % 4)
            return {"think_format": 0.0, "total": total, "correct": float(total == 3.0)}

    yield "test_length"
    REWARDS.remove("test_length")


def rollout_rewards(exp, module, g: int) -> torch.Tensor:
    """[B, G] rewards of the rollout rows, scored again from their text."""
    rows = rollout_rows(exp)
    texts = [module.processor.decode(exp.seqs.ids[i][exp.seqs.mask[i] > 0]) for i in rows]
    return torch.tensor([module.reward_fn(t, None, 0, 0)["total"] for t in texts]).view(-1, g)


def test_smooth_group_mean_sets_the_label_reward_where_a_rollout_reaches_it(examples, length_reward):
    raw, module = collect(examples, RewardControl(), reward=length_reward)
    smooth, _ = collect(examples, RewardControl.of("smooth"), reward=length_reward)
    assert torch.equal(raw.seqs.ids, smooth.seqs.ids) and torch.equal(raw.loss_mask, smooth.loss_mask)
    r = rollout_rewards(raw, module, 3)
    reached = (r >= 3.0).any(dim=1)
    assert reached.any() and not reached.all(), r  # both kinds of group in this batch
    label = torch.where(reached, r.mean(dim=1), torch.tensor(3.0))
    expected = group_advantages(torch.cat([r, label[:, None]], dim=1))
    assert torch.equal(smooth.advantages, torch.cat([expected[:, :3].reshape(-1), expected[:, 3]]))
    plain = group_advantages(torch.cat([r, torch.full((3, 1), 3.0)], dim=1))
    assert torch.equal(raw.advantages, torch.cat([plain[:, :3].reshape(-1), plain[:, 3]]))
    # Where nobody reaches the label it keeps its push; where someone does, it has none.
    assert torch.equal(smooth.advantages[9:][~reached], raw.advantages[9:][~reached])
    assert smooth.advantages[9:][reached].abs().max() < 1e-5
    assert smooth.metrics["label/reward_used"] == pytest.approx(label.mean().item())


def test_injection_when_on_failure_adds_labels_to_failed_groups_only(examples, length_reward):
    always, module = collect(examples, RewardControl(), reward=length_reward)
    failing, _ = collect(
        examples, RewardControl(), reward=length_reward, injection=Injection(when="on_failure")
    )
    r = rollout_rewards(always, module, 3)
    failed = ~(r == 3.0).any(dim=1)  # no rollout correct
    assert failed.any() and not failed.all(), r
    # Same rollouts, one label per failed group, in order.
    w = min(always.seqs.ids.shape[1], failing.seqs.ids.shape[1])
    assert torch.equal(always.seqs.ids[:9, :w], failing.seqs.ids[:9, :w])
    assert failing.is_label.sum().item() == failed.sum().item()
    assert torch.equal(failing.seqs.ids[9:, :w], always.seqs.ids[9:][failed][:, :w])
    # Failed groups as with ViSurf; the others as RLVR's groups of G.
    visurf_adv = always.advantages[:9].view(3, 3)
    rlvr_adv = group_advantages(r)
    expected = torch.where(failed[:, None], visurf_adv, rlvr_adv)
    assert torch.equal(failing.advantages[:9], expected.reshape(-1))
    assert torch.equal(failing.advantages[9:], always.advantages[9:][failed])
    assert failing.metrics["label/entered"] == pytest.approx(failed.float().mean().item())


def test_injection_how_replace_drops_each_groups_last_rollout(examples, length_reward):
    added, module = collect(examples, RewardControl(), reward=length_reward)
    replaced, _ = collect(examples, RewardControl(), reward=length_reward, injection=Injection(how="replace"))
    kept = torch.tensor([0, 1, 3, 4, 6, 7])  # rollouts 0 and 1 of each group of 3
    w = min(added.seqs.ids.shape[1], replaced.seqs.ids.shape[1])
    assert replaced.seqs.ids.shape[0] == 6 + 3 and replaced.is_label.tolist() == [False] * 6 + [True] * 3
    assert torch.equal(replaced.seqs.ids[:6, :w], added.seqs.ids[kept, :w])
    assert torch.equal(replaced.seqs.ids[6:, :w], added.seqs.ids[9:, :w])  # the same labels
    assert torch.equal(replaced.loss_mask[:6, :w], added.loss_mask[kept, :w])
    r = rollout_rewards(added, module, 3)
    expected = group_advantages(torch.cat([r[:, :2], torch.full((3, 1), 3.0)], dim=1))  # {o_1, o_2, ŷ}
    assert torch.equal(replaced.advantages, torch.cat([expected[:, :2].reshape(-1), expected[:, 2]]))


def test_injection_label_reward_maximum_and_scored(examples, length_reward):
    raw, module = collect(examples, RewardControl(), reward=length_reward)
    maximum, _ = collect(
        examples, RewardControl(), reward=length_reward, injection=Injection(label_reward="maximum")
    )
    assert torch.equal(raw.seqs.ids, maximum.seqs.ids) and torch.equal(raw.loss_mask, maximum.loss_mask)
    r = rollout_rewards(raw, module, 3)
    expected = group_advantages(torch.cat([r, torch.full((3, 1), 5.0)], dim=1))  # max_total = 5
    assert torch.equal(maximum.advantages, torch.cat([expected[:, :3].reshape(-1), expected[:, 3]]))
    assert maximum.metrics["label/reward"] == raw.metrics["label/reward"] == 3.0  # as scored
    # `scored` leaves reward control's smoothing out: with smooth on, the same as with it off.
    scored, _ = collect(
        examples, RewardControl.of("smooth"), reward=length_reward, injection=Injection(label_reward="scored")
    )
    assert torch.equal(scored.advantages, raw.advantages)


def test_injection_label_ratio_reaches_the_loss(examples):
    """The stage hands `label_ratio` to the loss: `clipped` with one pass is `on_policy` exactly,
    `shaped` changes the label rows' gradient only."""
    exp, module = collect(examples, RewardControl.of("align"))
    cfg = module.cfg
    results = {}
    for ratio in ("on_policy", "clipped", "shaped"):
        stage = PolicyStage(cfg.objective, cfg.rollout, RewardControl(), True, Injection(label_ratio=ratio))
        module.policy.zero_grad()
        loss, _ = stage.loss(module, exp)
        loss.backward()
        results[ratio] = (loss.item(), grads(module.policy))
    assert results["clipped"][0] == results["on_policy"][0]
    assert_same_grads(results["clipped"][1], results["on_policy"][1])
    assert results["shaped"][0] != results["on_policy"][0]
    # Rollout rows alone (labels masked out of the loss) give the same gradient under any ratio.
    rollouts_only = Experience(**{**exp.__dict__, "loss_mask": exp.loss_mask * (~exp.is_label)[:, None]})
    per_ratio = []
    for ratio in ("on_policy", "shaped"):
        stage = PolicyStage(cfg.objective, cfg.rollout, RewardControl(), True, Injection(label_ratio=ratio))
        module.policy.zero_grad()
        stage.loss(module, rollouts_only)[0].backward()
        per_ratio.append(grads(module.policy))
    assert_same_grads(*per_ratio)


@pytest.mark.parametrize("preset", ["visurf", "luffy", "sgrpo", "hpt"])
def test_every_injection_preset_composes_and_takes_a_step(examples, preset):
    """`injection=<preset>` reaches the policy stage through the config, and a step is finite."""
    cfg, module = make_module("objective=visurf", f"injection={preset}", "rollout.num_generations=3")
    stage = module.schedule.at(0)
    expected = {
        "visurf": Injection(),
        "luffy": Injection(how="replace", label_ratio="shaped", label_reward="scored"),
        "sgrpo": Injection(when="on_failure", label_reward="maximum"),
        "hpt": Injection(when="on_failure", label_reward="scored"),
    }[preset]
    assert stage.injection == expected
    torch.manual_seed(5)
    exp = stage.experience(module, examples)
    module.policy.zero_grad()
    loss, _ = stage.loss(module, exp)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads(module.policy).values())


def test_sft_rlvr_schedule_switches_stage_at_the_fraction():
    cfg = compose_config(["objective=sft_rlvr", "trainer.max_steps=10"])
    schedule = build_schedule(cfg)
    kinds = [schedule.at(s).kind for s in range(10)]
    assert kinds == ["sft"] * 5 + ["policy"] * 5
    assert not schedule.at(9).inject_label


def test_a_policy_step_logs_what_each_data_group_learns_from(examples):
    """Per data group: rollout accuracy, `[]` share and groups with no correct rollout, counted from
    the step's own rollouts; the label's entry and advantage per group, from its own advantages."""
    exp, _ = collect(examples, RewardControl.of("align", "no_think", "smooth"), g=3)
    correct = exp.rollout_correct  # [B, G]
    for name in {e.group for e in examples}:
        rows = torch.tensor([e.group == name for e in examples])
        assert exp.metrics[f"group/{name}/accuracy"] == pytest.approx(correct[rows].float().mean().item())
        assert exp.metrics[f"group/{name}/none_correct"] == pytest.approx(
            (~correct[rows].any(1)).float().mean().item()
        )
        assert exp.metrics[f"group/{name}/label_entered"] == 1.0  # ViSurf: the label enters every group
        label_adv = exp.advantages[exp.is_label][rows]
        assert exp.metrics[f"group/{name}/label_advantage"] == pytest.approx(label_adv.mean().item())
        assert 0.0 <= exp.metrics[f"group/{name}/empty_answer_rate"] <= 1.0
        label_tokens = exp.loss_mask[exp.is_label][rows].sum(-1).float().mean().item()
        assert exp.metrics[f"group/{name}/label_tokens"] == pytest.approx(label_tokens)  # think masked
