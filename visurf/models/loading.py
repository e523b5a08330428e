"""Resolve `model=` configs to a local HF model directory and load policy + processor from it.

Sources: `tiny` (random tiny Qwen2.5-VL, built here on first use: no training), `tiny_base` (the
tiny model after SFT on the synthetic world's known concepts: trained by the recipe
`visurf.recipes.base_model`, only looked up here), `path` (any local model directory),
`hf_cache` (a hub id looked up in the local HF cache only — nothing is downloaded at run time).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

from visurf.io.cache import build_entry, cache_dir, is_complete, recipe_key
from visurf.models.base import base_path
from visurf.models.processing import VLProcessor
from visurf.models.tiny import TinyConfig, build_tiny

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


TINY_RECIPE_VERSION = 3


class ModelNotFoundError(FileNotFoundError):
    pass


def tiny_dir(frame: int) -> Path:
    cfg = TinyConfig(frame=frame)
    # The version changes whenever the tiny recipe (e.g. the tokenizer corpus) changes.
    out = cache_dir() / "models" / f"tiny-{recipe_key({**vars(cfg), 'version': TINY_RECIPE_VERSION})}"

    def build(folder: Path) -> None:
        log.info("building the tiny model at %s", out)
        build_tiny(folder, cfg)

    return build_entry(out, build)  # counts only once complete: a killed build is redone


def resolve_model_dir(model_cfg) -> Path:
    source = model_cfg["source"]
    if source == "tiny":
        return tiny_dir(int(model_cfg["frame"]))
    if source == "tiny_base":
        path = base_path(model_cfg)
        if not is_complete(path):
            raise ModelNotFoundError(
                f"model.source=tiny_base: the base model is not built yet (expected at {path}); "
                "`python -m visurf.run` builds it on first use, `python -m visurf.recipes.base_model` "
                "builds it alone (in code: visurf.recipes.base_model.ensure_model(cfg.model))"
            )
        return path
    if source == "path":
        path = Path(str(model_cfg["path"])).expanduser()
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"model.path={path} holds no model (looked for {path / 'config.json'})")
        return path
    if source == "hf_cache":
        if model_cfg.get("path"):
            return resolve_model_dir({**model_cfg, "source": "path"})
        return hf_cache_dir(str(model_cfg.hf_id))
    raise ValueError(f"model.source must be one of tiny, tiny_base, path, hf_cache; got {source!r}")


def hf_cache_dir(hf_id: str) -> Path:
    """The snapshot of `hf_id` in the local HF cache; never downloads."""
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(hf_id, local_files_only=True))
    except Exception as err:
        raise ModelNotFoundError(
            f"{hf_id} is not in the local HF cache (looked in {constants.HF_HUB_CACHE}); download it "
            f"beforehand (`huggingface-cli download {hf_id}`) or set model.source=path model.path=DIR"
        ) from err


def load_policy(model_cfg, path: Path | None = None, quantization_config=None):
    """(model, processor) from a model directory, with the config's dtype and attention.

    `quantization_config` (peft=qlora: `visurf.models.adapters.quantization_config`) quantises
    the weights as they load.
    """
    path = path or resolve_model_dir(model_cfg)
    kwargs = {"dtype": DTYPES[str(model_cfg.dtype)]}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if model_cfg.get("attn_implementation"):
        kwargs["attn_implementation"] = str(model_cfg.attn_implementation)
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    family = model_cfg.get("family")
    if family and family != model.config.model_type:
        raise ValueError(
            f"model.family={family} but {path} holds a {model.config.model_type} model; "
            f"set model.family={model.config.model_type} or pick its preset"
        )
    if model_cfg.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    processor = VLProcessor.from_pretrained(path)
    apply_pixel_bounds(model, processor, model_cfg)
    return model, processor


def apply_pixel_bounds(model, processor: VLProcessor, model_cfg) -> None:
    """`model.min_pixels` / `model.max_pixels` into the processor of a family that takes them,
    and the frame checked against the bounds in force: a frame outside them would be resized by
    the processor, so the image tokens would no longer show the frame the labels are in."""
    from visurf.models.families import family_of

    low, high = model_cfg.get("min_pixels"), model_cfg.get("max_pixels")
    family_type = model.config.model_type
    if not family_of(model).pixel_bounds:
        if low is not None or high is not None:
            raise ValueError(
                f"model.min_pixels / model.max_pixels: the {family_type} processor takes no pixel "
                "bounds (it resizes every image to its own tiles); leave them null"
            )
        return
    processor.set_pixel_bounds(low, high)
    low, high = processor.pixel_bounds()
    frame = int(model_cfg.frame)
    pixels = frame * frame
    for bound, name, outside in (
        (high, "max_pixels", pixels > (high or pixels)),
        (low, "min_pixels", pixels < (low or 0)),
    ):
        if outside:
            raise ValueError(
                f"model.frame={frame}: a {frame}x{frame} image is {pixels} pixels, "
                f"{'more' if name == 'max_pixels' else 'fewer'} than the processor's {name} of {bound}; "
                f"it would resize the image and the labels' coordinates would not match it: set "
                f"model.{name}={pixels} or another model.frame"
            )


def freeze_vision_tower(model) -> None:
    """Keep the vision tower (and its projector) out of training, as EasyR1's freeze_vision_tower.

    RL's noisy updates move every trainable weight by about the learning rate per step; the tiny
    vision tower loses what it perceives within tens of steps, the language model does not. Where
    the tower is comes from the family table (visurf.models.families).
    """
    from visurf.models.families import vision_modules

    try:
        modules = vision_modules(model)
    except ValueError as err:
        raise ValueError(f"model.freeze_vision_tower=true: {err}") from err
    for module in modules:
        module.requires_grad_(False)
