"""bf16 on CPU: every objective runs under Lightning's bf16-mixed (and bf16-true), the model computes
in bf16, and what decides the update — token log-probabilities, losses, advantages, the KL term,
the loss the non-finite guard checks — is float32."""

from __future__ import annotations

import lightning as L
import pytest
import torch

import visurf.rollout.scoring as rollout
from visurf.algorithms import PolicyLossOptions, group_advantages, policy_loss, sft_loss
from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import load_policy
from visurf.recipes.train import train

# Policy objectives also score the reference (β > 0) and old log-probabilities (μ = 2).
POLICY_EXTRAS = ("objective.beta=0.04", "objective.mu=2")
OBJECTIVES = {"sft": (), "rlvr": POLICY_EXTRAS, "sft_rlvr": ("objective.beta=0.04",), "visurf": POLICY_EXTRAS}


class LossDtypes(L.Callback):
    """The dtype of every loss handed to backward: the loss the module's non-finite guard checks."""

    def __init__(self):
        self.dtypes: list[torch.dtype] = []
        self.values: list[float] = []
        self.devices: set[str] = set()

    def on_before_backward(self, trainer, pl_module, loss):
        self.dtypes.append(loss.dtype)
        self.values.append(float(loss.detach()))
        self.devices.add(loss.device.type)


@pytest.fixture
def head_dtypes(monkeypatch):
    """(dtype of the output head's logits, of the log-probabilities, with gradients?) per scoring."""
    seen = []
    original = rollout._chunked_logps

    def recording(head, hidden, ids, chunk_size, *args):
        logits = []
        hook = head.register_forward_hook(lambda module, args, out: logits.append(out.dtype))
        try:
            out = original(head, hidden, ids, chunk_size, *args)
        finally:
            hook.remove()
        seen.append((logits[0], out.dtype, torch.is_grad_enabled()))
        return out

    monkeypatch.setattr(rollout, "_chunked_logps", recording)
    return seen


def bf16_run(tmp_path, objective: str, precision: str, *extra: str) -> tuple[dict, LossDtypes]:
    losses = LossDtypes()
    cfg = compose_config(
        ["experiment=smoke", f"objective={objective}", f"trainer.precision={precision}", *extra]
    )
    summary = train(cfg, tmp_path / f"{objective}-{precision}", callbacks=[losses])
    return summary, losses


def check_bf16_run(summary, losses, head_dtypes, objective):
    assert summary["steps"] == 2 and summary["skipped_steps"] == 0
    assert losses.dtypes and set(losses.dtypes) == {torch.float32}
    assert all(torch.isfinite(torch.tensor(losses.values)))
    # Training passes and scoring without gradients (old / reference log-probabilities, when the
    # objective has them) both computed bf16 logits and returned float32 log-probabilities.
    assert {(h, o) for h, o, _ in head_dtypes} == {(torch.bfloat16, torch.float32)}
    with_grad = {g for _, _, g in head_dtypes}
    assert with_grad == ({True} if objective == "sft" else {True, False})


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_every_objective_runs_in_bf16_mixed(tmp_path, head_dtypes, objective):
    summary, losses = bf16_run(tmp_path, objective, "bf16-mixed", *OBJECTIVES[objective])
    check_bf16_run(summary, losses, head_dtypes, objective)


@pytest.mark.parametrize(
    "objective",
    [
        "sft_rlvr",  # an SFT stage, then an RLVR stage with a KL reference
        "visurf",  # the label's scores are float32 even where bf16 is the default dtype
    ],
)
def test_bf16_true_runs(tmp_path, head_dtypes, objective):
    summary, losses = bf16_run(tmp_path, objective, "bf16-true", *OBJECTIVES[objective])
    check_bf16_run(summary, losses, head_dtypes, objective)


def test_bf16_log_probabilities_give_float32_losses_advantages_and_kl(visurf_cache):
    """The model's bf16 compute reaches the loss functions as float32 (token_logps upcasts each
    chunk of logits before its logsumexp), so the losses, the KL term and their statistics are
    float32 and close to the float32 model's."""
    from tests.integration.test_rollout import batch

    cfg = compose_config(["experiment=smoke"])
    policy, processor = load_policy(cfg.model)
    examples = load_examples(cfg.data, 112, "train")[:2]
    seqs = batch(processor, examples, ["<think>a</think><answer>[]</answer>", "<answer>[]</answer>"])
    exact = rollout.token_logps(policy, seqs)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what bf16-mixed runs the model under
        logp = rollout.token_logps(policy, seqs)
    with torch.no_grad():
        ref = rollout.token_logps(policy.to(torch.bfloat16), seqs)  # a bf16-true reference
    assert exact.dtype == logp.dtype == ref.dtype == torch.float32
    assert (logp - exact).abs().max() < 0.1 and (ref - exact).abs().max() < 0.1  # bf16 rounding

    advantages = group_advantages(torch.tensor([[1.0, 0.0]]))
    assert advantages.dtype == torch.float32
    loss, stats = policy_loss(
        logp, logp.detach(), ref, advantages[0], seqs.mask,
        torch.tensor([False, True]), PolicyLossOptions(beta=0.04, eps_low=0.2, eps_high=0.2, aggregation="grpo"),
    )  # fmt: skip
    assert loss.dtype == torch.float32 and all(v.dtype == torch.float32 for v in stats.values())
    assert stats["kl"] > 0  # the bf16 reference differs from the policy by its rounding
    assert sft_loss(logp, seqs.mask).dtype == torch.float32
    loss.backward()
    grads = [p.grad for p in policy.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("preset", ["gpu", "ddp", "fsdp"])
def test_gpu_presets_default_to_bf16_mixed(preset):
    assert compose_config([f"trainer={preset}"]).trainer.precision == "bf16-mixed"
    assert compose_config(["trainer=cpu"]).trainer.precision == "32-true"
