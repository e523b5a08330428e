"""The SFT stage: −mean log-likelihood of the ground-truth label's tokens (docs/method.md)."""

from __future__ import annotations

import torch

from visurf.algorithms import sft_loss
from visurf.objectives.experience import Experience
from visurf.rewards.parsing import format_completion
from visurf.rollout import Sequences, pad_completions, token_logps


class SFTStage:
    kind = "sft"
    passes = 1

    def __init__(self, use_think: bool = False):
        # The ViSurf schema has no reasoning text; the base model's recipe turns think on.
        self.use_think = use_think

    def on_start(self, module) -> None:
        pass

    def label_text(self, example) -> str:
        think = example.think if self.use_think and example.think else None
        return format_completion(think, example.objects)

    @torch.no_grad()
    def experience(self, module, examples: list) -> Experience:
        proc = module.processor
        inputs = module.to_device(proc([e.prompt for e in examples], [e.image for e in examples]))
        ids, mask = pad_completions(
            proc.completion_ids([self.label_text(e) for e in examples]), proc.pad_token_id, proc.eos_token_id
        )
        ids, mask = ids.to(module.device), mask.to(module.device)
        n = len(examples)
        seqs = Sequences(inputs, ids, mask, torch.zeros(n, dtype=torch.bool, device=module.device))
        return Experience(
            seqs=seqs,
            loss_mask=mask,
            advantages=torch.ones(n, device=module.device),
            is_label=torch.ones(n, dtype=torch.bool, device=module.device),
            metrics={"completion_length": mask.sum(-1).mean().item()},
        )

    def loss(self, module, exp: Experience) -> tuple[torch.Tensor, dict]:
        logp = token_logps(module.policy, exp.seqs, module.micro_batch_size)
        loss = sft_loss(logp, exp.loss_mask)
        return loss, {"sft_nll": loss.detach()}
