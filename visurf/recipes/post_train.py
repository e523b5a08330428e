"""The post-training recipe: what `python -m visurf.run` does with a composed config.

The config is checked first (before minutes are spent on a base model), the start block is
printed, the model the config names is made if it has to be trained (the embedded base model,
`visurf.recipes.base_model`), then `visurf.recipes.train.train` trains it and writes the run
directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from visurf.config.validate import validate
from visurf.recipes.base_model import ensure_model
from visurf.recipes.train import train
from visurf.training.console import progress_bar, run_header

log = logging.getLogger(__name__)


def post_train(cfg, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Make the config's model if needed, train per `cfg` into `run_dir`, return the summary."""
    validate(cfg)  # before minutes are spent on a base model
    if rank_zero_only.rank == 0:  # under DDP/FSDP every process runs this; one block is enough
        log.info(run_header(cfg, run_dir))
    ensure_model(cfg.model)
    return train(cfg, run_dir, [progress_bar(), *(callbacks or [])], checked=True)
