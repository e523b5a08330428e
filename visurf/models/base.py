"""Where the embedded base model is cached: $VISURF_CACHE/models/base-<recipe hash>.

The key is `model.base` (the recipe's steps, lr, ...), the frame, and the run's synthetic world
where it differs from the default one. This module only names the place; the base is trained by
`visurf.recipes.base_model`, which the run recipe calls before the model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from visurf.io.cache import cache_dir, recipe_key

# data.synth fields the base recipe sets itself: the rest describe the world and follow the run.
_RECIPE_FIELDS = ("num_train", "num_test", "num_val", "seed", "novel_fraction")


def world_changes(model_cfg) -> dict:
    """The run's synthetic-world fields that differ from the default world ({} for the default).

    Only the differences enter the cache key, so the default world keeps its base.
    """
    world = model_cfg.base.get("world")
    if world is None:  # data=local: the base learns the default world
        return {}
    from dataclasses import asdict

    from visurf.config.compose import compose_config
    from visurf.data.synth_config import SynthConfig

    default = {**asdict(SynthConfig()), **OmegaConf.to_container(compose_config([]).data.synth)}
    world = OmegaConf.to_container(world, resolve=True)
    return {
        k: v
        for k, v in sorted(world.items())
        if k not in _RECIPE_FIELDS and _plain(v) != _plain(default.get(k))
    }


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def base_path(model_cfg) -> Path:
    """Where the base of this recipe and world is cached (built or not)."""
    recipe = {"frame": int(model_cfg.frame), **OmegaConf.to_container(model_cfg.base, resolve=True)}
    recipe.pop("world", None)
    if world := world_changes(model_cfg):
        recipe["world"] = world
    return cache_dir() / "models" / f"base-{recipe_key(recipe)}"
