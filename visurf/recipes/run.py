"""The run recipe: one post-training run from a composed config (what `python -m visurf.run` does).

The model the config names is made first if it has to be trained (the embedded base model, see
`visurf.recipes.base_model`); then `visurf.train.fit` trains it and writes the run directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from visurf import train
from visurf.config import validate
from visurf.logs import progress_bar, run_header
from visurf.recipes.base_model import ensure_model

log = logging.getLogger(__name__)

run_dir_for = train.run_dir_for


def fit(cfg, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Make the config's model if needed, train per `cfg` into `run_dir`, return the summary."""
    validate(cfg)  # refuse a bad config before spending minutes on the base model
    if rank_zero_only.rank == 0:  # under DDP/FSDP every process runs this; one block is enough
        log.info(run_header(cfg, run_dir))
    ensure_model(cfg.model)
    return train.fit(cfg, run_dir, [progress_bar(), *(callbacks or [])])
