"""What a stage hands from collection (no gradient) to its loss passes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from visurf.rollout import Sequences


@dataclass
class Experience:
    seqs: Sequences
    loss_mask: torch.Tensor  # [N, C] tokens that enter the loss
    advantages: torch.Tensor  # [N]
    is_label: torch.Tensor  # [N] bool: injected label rows (on-policy, unclipped)
    old_logp: torch.Tensor | None = None  # [N, C], only when a batch is optimised more than once
    ref_logp: torch.Tensor | None = None  # [N, C], only when the KL term is on
    rollout_correct: torch.Tensor | None = None  # [B, G] bool: each rollout's answer right, before injection
    metrics: dict[str, float] = field(default_factory=dict)
    # One record per row, for the completions table (visurf/training/completions_log.py):
    # {example: index of its prompt, completion: text, rewards: {component: value}, advantage, is_label}
    samples: list[dict] | None = None
