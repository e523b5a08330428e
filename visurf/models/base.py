"""The embedded default base model: the tiny VLM after SFT on the synthetic world's known concepts.

Built on first use by an ordinary visurf SFT run (think texts on, novel concepts held out) and
cached under $VISURF_CACHE/models/base-<recipe hash>; later runs load it like any checkpoint.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from filelock import FileLock
from omegaconf import OmegaConf

from visurf.cache import cache_dir, recipe_key

log = logging.getLogger(__name__)


def base_overrides(model_cfg) -> list[str]:
    b = model_cfg.base
    return [
        "objective=sft",
        "objective.sft_use_think=true",
        "model=tiny",
        f"model.frame={int(model_cfg.frame)}",
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


def base_dir(model_cfg) -> Path:
    recipe = {"frame": int(model_cfg.frame), **OmegaConf.to_container(model_cfg.base, resolve=True)}
    out = cache_dir() / "models" / f"base-{recipe_key(recipe)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "config.json").exists():
            build_base(model_cfg, out)
    return out


def build_base(model_cfg, out: Path) -> None:
    from visurf.compose import compose_config
    from visurf.train import fit

    log.info("building the base model (first use; cached at %s)", out)
    work = out.with_name(out.name + "-run")
    shutil.rmtree(work, ignore_errors=True)
    summary = fit(compose_config(base_overrides(model_cfg)), work)
    after = summary["eval_after"]
    log.info(
        "base model: known-concept accuracy %.3f, think rate %.3f", after["accuracy"], after["think_rate"]
    )
    shutil.copytree(work / "model", out)
    shutil.copy(work / "summary.json", out / "base_summary.json")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
