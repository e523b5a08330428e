"""Where the embedded base model is cached: $VISURF_CACHE/models/base-<recipe hash>.

The key is `model.base` (the recipe's steps, lr, ...), the frame, and the synthetic world the
base learns (`model.base.world`, the run's `data.synth`): every field of that world, defaults
filled in, less the fields the base recipe sets itself. This module only names the place, from
the model config alone; the base is trained by `visurf.recipes.base_model`, which the run recipe
calls before the model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from omegaconf import OmegaConf

from visurf.data.synth_config import world_config
from visurf.io.cache import cache_dir, recipe_key

# data.synth fields the base recipe sets itself: the rest describe the world and follow the run.
RECIPE_FIELDS = ("num_train", "num_test", "num_val", "seed", "novel_fraction")


def base_world(model_cfg) -> dict | None:
    """The world the base learns, every field but the recipe's own; None where the run has no
    synthetic world (data=local): the base then learns the default world."""
    world = model_cfg.base.get("world")
    if world is None:
        return None
    full = asdict(world_config(OmegaConf.to_container(world, resolve=True)))
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in sorted(full.items()) if k not in RECIPE_FIELDS
    }


def base_path(model_cfg) -> Path:
    """Where the base of this recipe and world is cached (built or not)."""
    recipe = {"frame": int(model_cfg.frame), **OmegaConf.to_container(model_cfg.base, resolve=True)}
    recipe["world"] = base_world(model_cfg)
    return cache_dir() / "models" / f"base-{recipe_key(recipe)}"
