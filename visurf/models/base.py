"""The embedded default base model: the tiny VLM after SFT on the synthetic world's known concepts.

Built on first use by an ordinary visurf SFT run (think texts on, novel concepts held out) and
cached under $VISURF_CACHE/models/base-<recipe hash>; later runs load it like any checkpoint.
The base learns the run's own synthetic world (`model.base.world` is `data.synth`): a run that
changes the world's concepts or layout gets a base trained on that world, in its own cache entry.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from filelock import FileLock
from omegaconf import OmegaConf, open_dict

from visurf.cache import cache_dir, recipe_key

log = logging.getLogger(__name__)

# data.synth fields the base recipe sets itself: the rest describe the world and follow the run.
_RECIPE_FIELDS = ("num_train", "num_test", "seed", "novel_fraction")


def world_changes(model_cfg) -> dict:
    """The run's synthetic-world fields that differ from the default world ({} for the default).

    Only the differences enter the cache key, so the default world keeps its base.
    """
    world = model_cfg.base.get("world")
    if world is None:  # data=local: the base learns the default world
        return {}
    from dataclasses import asdict

    from visurf.compose import compose_config
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


def base_overrides(model_cfg) -> list[str]:
    b = model_cfg.base
    return [
        "objective=sft",
        "objective.sft_use_think=true",
        "model=tiny",
        f"model.frame={int(model_cfg.frame)}",
        f"model.freeze_vision_tower={str(bool(b.get('freeze_vision_tower', False))).lower()}",
        "data=synth",
        f"data.synth.num_train={int(b.num_train)}",
        "data.synth.num_test=96",
        "data.synth.novel_fraction=0.0",
        f"data.synth.seed={int(b.seed) + 7}",
        f"trainer.max_steps={int(b.steps)}",
        f"train.batch_size={int(b.batch_size)}",
        f"train.checkpoint_every={int(b.steps)}",
        f"optim.lr={float(b.lr)}",
        f"optim.warmup_steps={int(b.get('warmup_steps', 20))}",
        "optim.schedule=cosine",
        "eval.num_examples=64",
        f"seed={int(b.seed)}",
    ]


def base_config(model_cfg):
    """The composed config of the base's SFT run, world included."""
    from visurf.compose import compose_config

    cfg = compose_config(base_overrides(model_cfg))
    with open_dict(cfg):  # world fields the yaml does not list (e.g. known_shapes) are new keys
        cfg.data.synth = OmegaConf.merge(cfg.data.synth, world_changes(model_cfg))
    return cfg


def base_path(model_cfg) -> Path:
    """Where the base of this recipe and world is cached (built or not)."""
    recipe = {"frame": int(model_cfg.frame), **OmegaConf.to_container(model_cfg.base, resolve=True)}
    recipe.pop("world", None)
    if world := world_changes(model_cfg):
        recipe["world"] = world
    return cache_dir() / "models" / f"base-{recipe_key(recipe)}"


def base_dir(model_cfg) -> Path:
    out = base_path(model_cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").exists():
            build_base(model_cfg, out)
    return out


def build_base(model_cfg, out: Path) -> None:
    from visurf.train import fit

    log.info("building the base model (first use; cached at %s)", out)
    work = out.with_name(out.name + "-run")
    shutil.rmtree(work, ignore_errors=True)
    summary = fit(base_config(model_cfg), work)
    after = summary["eval_after"]
    log.info(
        "base model: known-concept accuracy %.3f, think rate %.3f", after["accuracy"], after["think_rate"]
    )
    shutil.copytree(work / "model", out)
    shutil.copy(work / "summary.json", out / "base_summary.json")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
