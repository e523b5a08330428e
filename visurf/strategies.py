"""Lightning strategies from `trainer=` configs (cpu, gpu, ddp, fsdp)."""

from __future__ import annotations


def build_strategy(trainer_cfg):
    """The `strategy` argument of `lightning.Trainer` for this trainer config."""
    return str(trainer_cfg.strategy)
