"""experiments/probes/gradient_snr.py: the signal share of a step's gradient, from independent batches."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import torch

from experiments.probes import gradient_snr

ROOT = Path(__file__).resolve().parents[2]


def test_estimates_recover_a_known_signal_and_noise():
    torch.manual_seed(0)
    k, p = 64, 20_000
    signal = torch.full((p,), 0.5, dtype=torch.float64)  # |s|^2 = 0.25 p
    grads = signal + torch.randn(k, p, dtype=torch.float64)  # E|n|^2 = p
    out = gradient_snr.snr(grads)
    assert out["signal_energy"] == pytest.approx(0.25 * p, rel=0.05)
    assert out["grad_energy"] == pytest.approx(1.25 * p, rel=0.02)
    assert out["signal_share"] == pytest.approx(0.2, abs=0.01)
    assert out["adam_signal_share"] == pytest.approx(0.2, abs=0.02)  # every parameter alike here


def test_pure_noise_has_no_signal_and_one_batch_is_refused():
    torch.manual_seed(1)
    out = gradient_snr.snr(torch.randn(32, 10_000, dtype=torch.float64))
    assert abs(out["signal_share"]) < 0.01 and out["adam_signal_share"] < 0.05
    with pytest.raises(ValueError, match="at least 2 batches"):
        gradient_snr.snr(torch.randn(1, 10, dtype=torch.float64))


def test_the_probe_runs_the_real_stage_on_real_batches(tmp_path):
    out = gradient_snr.main(
        ["--batches", "2", "--out", str(tmp_path / "snr.json"), "experiment=smoke", "objective=visurf"]
    )
    # the injected label gives every group a reward spread, so the gradients are not zero
    assert out["grad_energy"] > 0 and out["batches"] == 2
    assert (tmp_path / "snr.json").exists()


def test_group_kinds_by_hand():
    greedy = torch.tensor([False, False, True, True, True])
    correct = torch.tensor([[0, 1], [0, 0], [1, 0], [1, 1], [0, 0]], dtype=torch.bool)
    kinds = gradient_snr.group_kinds(greedy, correct)
    # turnable, other (all wrong like greedy), at risk, other (all right), at risk (all wrong)
    assert kinds.tolist() == [0, 2, 1, 2, 1]


def test_by_kind_shares_add_up_and_match_hand_computed_values():
    # Two batches, two parameters; kinds: turnable, at_risk, other.
    parts = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]], dtype=torch.float64
    )
    shares = torch.tensor([[0.25, 0.5, 0.25], [0.25, 0.25, 0.5]], dtype=torch.float64)
    out = gradient_snr.by_kind(parts, shares)
    # g_0 = (1, 1), g_1 = (1, -1): |g|^2 = 2 each; the pair's product (1 - 1) is 0 -> no signal here,
    # so use push and energy shares, and prompt shares.
    assert out["turnable"]["push_share"] == pytest.approx(0.5)
    assert out["at_risk"]["push_share"] == pytest.approx(0.5)
    assert out["other"]["push_share"] == 0
    assert out["turnable"]["energy_share"] == pytest.approx(0.5)
    assert out["at_risk"]["prompt_share"] == pytest.approx(0.375)
    assert sum(v["push_share"] for v in out.values()) == pytest.approx(1.0)
    # With a signal: the turnable parts agree across batches, the at-risk parts cancel.
    parts[1, 1] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # g_1 = (1, 1): g_0 . g_1 = 2
    out = gradient_snr.by_kind(parts, shares)
    assert out["turnable"]["signal_share"] == pytest.approx(0.5)  # (1*1) / 2 per pair
    assert sum(v["signal_share"] for v in out.values()) == pytest.approx(1.0)


@pytest.fixture
def hashed_reward():
    """Rewards and rightness that differ between completions (the tiny random model's completions
    all score 0 under the grounding reward, so its groups would have no spread and no kind)."""
    from visurf.rewards import REWARDS, register_reward

    @register_reward("test_hashed")
    class Hashed:
        components = ("think_format",)

        def __call__(self, completion, solution, width, height):
            h = zlib.crc32(completion.encode())
            return {"think_format": h % 101 / 100, "total": h % 101 / 100, "correct": float(h % 2)}

    yield "test_hashed"
    REWARDS.remove("test_hashed")


def test_by_kind_parts_add_up_to_the_batch_gradient(hashed_reward):
    from visurf.config.compose import compose_config
    from visurf.recipes.train import build_run

    snr = gradient_snr
    overrides = ["experiment=smoke", "objective=rlvr", "objective.beta=0.0", f"reward.name={hashed_reward}"]
    cfg = compose_config([*overrides, "rollout.num_generations=4", "objective.mask_truncated=false"])
    module, train_examples, _ = build_run(cfg)
    stage = module.schedule.stages[0]
    batches = [train_examples[:2], train_examples[2:4]]
    parts, shares = snr.kind_gradients(module, stage, batches)
    whole = snr.batch_gradients(module, stage, batches)  # the same rollouts (seeded per batch)
    assert parts.shape[:2] == (2, 3) and torch.allclose(shares.sum(-1), torch.ones(2, dtype=torch.float64))
    assert whole.abs().max() > 0  # some group has a reward spread
    assert torch.allclose(parts.sum(1), whole, atol=1e-6 * whole.abs().max().item())


def test_by_kind_refuses_an_injected_label():
    from visurf.config.compose import compose_config
    from visurf.recipes.train import build_run

    module, train_examples, _ = build_run(compose_config(["experiment=smoke", "objective=visurf"]))
    with pytest.raises(ValueError, match="--by-kind splits RLVR groups"):
        gradient_snr.kind_gradients(module, module.schedule.stages[0], [train_examples[:2]])


def test_experience_records_each_rollouts_rightness(hashed_reward):
    """`Experience.rollout_correct` is the reward's `correct` of each rollout, by group, which
    `kind_gradients` reads in place of decoding and scoring the rollouts again."""
    from visurf.config.compose import compose_config
    from visurf.recipes.train import build_run

    cfg = compose_config(
        ["experiment=smoke", "objective=rlvr", f"reward.name={hashed_reward}", "rollout.num_generations=4"]
    )
    module, train_examples, _ = build_run(cfg)
    examples = train_examples[:3]
    torch.manual_seed(0)
    exp = module.schedule.stages[0].experience(module, examples)
    proc, reward = module.processor, module.reward_fn
    texts = [proc.decode(ids[m > 0]) for ids, m in zip(exp.seqs.ids, exp.seqs.mask)]
    rescored = [bool(reward(t, examples[i // 4].solution, 0, 0)["correct"]) for i, t in enumerate(texts)]
    assert exp.rollout_correct.dtype == torch.bool and exp.rollout_correct.shape == (3, 4)
    assert exp.rollout_correct.reshape(-1).tolist() == rescored
    assert 0 < sum(rescored) < 12  # the hashed reward marks some right and some wrong
