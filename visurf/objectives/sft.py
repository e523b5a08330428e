"""The SFT stage: −mean log-likelihood of the ground-truth label's tokens (docs/method.md)."""

from __future__ import annotations

import torch

from visurf.algorithms import sft_loss
from visurf.models.processing import images_of
from visurf.objectives.experience import Experience
from visurf.objectives.registry import register_stage
from visurf.objectives.stage import StageHost
from visurf.rewards.parsing import format_completion
from visurf.rollout import Sequences, pad_completions, token_logps


@register_stage("sft")
class SFTStage:
    passes = 1
    spec_keys = ()  # reads objective.sft_use_think

    def __init__(self, use_think: bool = False):
        # The ViSurf schema has no reasoning text; the base model's recipe turns think on.
        self.use_think = use_think

    @classmethod
    def from_config(cls, spec, cfg) -> SFTStage:
        return cls(use_think=bool(cfg.objective.sft_use_think))

    @staticmethod
    def title(spec) -> str:
        return "SFT"

    def on_start(self, host: StageHost) -> None:
        pass

    def label_text(self, example) -> str:
        think = example.think if self.use_think and example.think else None
        return format_completion(think, example.solution)  # the answer as the policy writes it

    @torch.no_grad()
    def experience(self, host: StageHost, examples: list) -> Experience:
        proc = host.processor
        inputs = host.to_device(proc([e.prompt for e in examples], [images_of(e) for e in examples]))
        texts = [self.label_text(e) for e in examples]
        ids, mask = pad_completions(proc.completion_ids(texts), proc.pad_token_id, proc.eos_token_id)
        ids, mask = ids.to(host.device), mask.to(host.device)
        n = len(examples)
        seqs = Sequences(inputs, ids, mask, torch.zeros(n, dtype=torch.bool, device=host.device))
        return Experience(
            seqs=seqs,
            loss_mask=mask,
            advantages=torch.ones(n, device=host.device),
            is_label=torch.ones(n, dtype=torch.bool, device=host.device),
            metrics={"completion_length": mask.sum(-1).mean().item()},
            samples=[{"example": i, "completion": t, "is_label": True} for i, t in enumerate(texts)],
        )

    def loss(self, host: StageHost, exp: Experience) -> tuple[torch.Tensor, dict]:
        logp = token_logps(host.policy, exp.seqs, host.micro_batch_size)
        loss = sft_loss(logp, exp.loss_mask)
        return loss, {"sft_nll": loss.detach()}
