"""The optimiser and learning-rate schedule of a run, from its `optim` config group."""

from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "cosine")


def build_optimizer(params, o):
    """AdamW (the default) or SGD with momentum, from the `optim` config group."""
    name = str(o.get("name", "adamw"))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas))
    if name == "sgd":
        # A step in proportion to each parameter's gradient: parameters whose gradient is small
        # (and, in a noisy RL step, mostly noise) move little, where Adam moves every one by ~lr.
        return torch.optim.SGD(
            params, lr=o.lr, weight_decay=o.weight_decay, momentum=float(o.get("momentum", 0.9))
        )
    raise ValueError(f"optim.name must be 'adamw' or 'sgd', got {name!r}")


def lr_factor(warmup: int, total: int, kind: str, floor: float = 0.0):
    """Linear warmup, then constant or cosine decay to `floor` (a fraction of lr) at `total` steps."""
    if kind not in SCHEDULES:
        raise ValueError(f"optim.schedule must be 'constant' or 'cosine', got {kind!r}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
