"""Compose a run config from visurf's Hydra configs in code (tests, the base-model recipe)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from visurf.config.paths import CONF_DIR


def compose_config(overrides: list[str] | None = None):
    """The same config `python -m visurf.run <overrides>` would get (without hydra's own node)."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=list(overrides or []))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides or []))
