"""The recipe of the embedded base model: the tiny VLM after SFT on the synthetic world's known concepts.

An ordinary visurf SFT run (think texts on, novel concepts held out), cached where
`visurf.models.base.base_path` says; later runs load it like any checkpoint. The base learns the
run's own synthetic world (`model.base.world` is `data.synth`): a run that changes the world's
concepts or layout gets a base trained on that world, in its own cache entry.

    python -m visurf.recipes.base_model [hydra overrides]   # build (or find) the base alone
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from visurf.config.compose import compose_config
from visurf.io.cache import build_entry
from visurf.models.base import base_path, base_world
from visurf.recipes.train import train
from visurf.runs.rundir import RunDir
from visurf.training.console import progress_bar, quiet_libraries, run_header

log = logging.getLogger(__name__)


def base_overrides(model_cfg) -> list[str]:
    """The base's SFT run as Hydra overrides, from `model.base` (steps, lr, ...) and the frame."""
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
        f"optim.min_lr_ratio={float(b.get('min_lr_ratio', 0.0))}",
        f"optim.weight_decay={float(b.get('weight_decay', 0.0))}",
        "eval.num_examples=64",
        f"seed={int(b.seed)}",
    ]


def base_config(model_cfg):
    """The composed config of the base's SFT run: the default config with the recipe's settings,
    on the world the base learns (the default world where the run has none)."""
    cfg = compose_config(base_overrides(model_cfg))
    world = base_world(model_cfg)
    if world is not None:
        with open_dict(cfg):  # world fields the yaml does not list (e.g. known_shapes) are new keys
            cfg.data.synth = OmegaConf.merge(cfg.data.synth, world)
    return cfg


def base_dir(model_cfg) -> Path:
    """The base of this recipe and world, built first if it is not cached yet."""
    # Concurrent runs (a multirun) build it once; it counts only once complete (a killed build is redone).
    return build_entry(base_path(model_cfg), lambda folder: build_base(model_cfg, folder))


def build_base(model_cfg, out: Path) -> None:
    log.info("building the base model (first use; cached at %s)", out)
    work = base_path(model_cfg).with_name(base_path(model_cfg).name + "-run")  # `out` is a temporary name
    shutil.rmtree(work, ignore_errors=True)
    cfg = base_config(model_cfg)
    log.info(run_header(cfg, work))
    after = train(cfg, work, [progress_bar()])["eval_after"]
    log.info("base model: known-concept accuracy %.3f", after["accuracy"])
    run = RunDir(work)
    shutil.copytree(run.model, out)
    shutil.copy(run.summary, out / "base_summary.json")
    shutil.rmtree(run.checkpoints, ignore_errors=True)


def ensure_model(model_cfg) -> None:
    """Make whatever `model_cfg` names that has to be trained before it can be loaded."""
    if model_cfg.get("source") == "tiny_base":
        base_dir(model_cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_libraries()
    print(base_dir(compose_config(sys.argv[1:]).model))
