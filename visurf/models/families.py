"""What visurf needs to know about each model family, in one table keyed by the HF `model_type`.

Everything else (image and end-of-turn tokens, which inputs a forward takes, how images are
encoded) comes from the checkpoint's own processor and model classes. A family not listed here
is refused with an error that names the model_type and what the table would need.

Fields:
- `tower`: the vision encoder's module path in the `...ForConditionalGeneration` model; with
  `projector` (the vision-to-text projection, or None where it sits inside the tower) it is what
  `model.freeze_vision_tower=true` freezes and what QLoRA leaves unquantised.
- `vision_blocks`: regex of the tower's repeated blocks, and `vision_projections`: the linear
  layers inside them that `peft.vision=true` adapts.
- `frame_multiple`: the image side (pixels) must be a multiple of patch size x merge, else the
  processor resizes the image and label coordinates no longer match it.
- `pixel_bounds`: the family's image processor bounds each image's pixel count (`size`'s
  `shortest_edge` / `longest_edge`, Qwen's min_pixels / max_pixels), so `model.min_pixels` /
  `model.max_pixels` apply; the other families resize to fixed tiles and take neither.
- `completion_token_type`: the `token_type_ids` value of generated tokens for families whose
  processor returns `token_type_ids` (PaliGemma: 1 = attended causally as a suffix); None where
  the family takes no token types for the completion (0 is used if the processor returns them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    tower: str
    projector: str | None
    vision_blocks: str
    vision_projections: tuple[str, ...]
    frame_multiple: int
    completion_token_type: int | None = None
    pixel_bounds: bool = False


_QWEN_ATTN = ("attn.qkv", "attn.proj")

_SMOLVLM = Family(
    "model.vision_model",
    "model.connector",
    r"model\.vision_model\.encoder\.layers\.\d+",
    ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"),
    1,
)

FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family(
        "model.visual", None, r"model\.visual\.blocks\.\d+", (*_QWEN_ATTN, "mlp.fc1", "mlp.fc2"), 28
    ),
    "qwen2_5_vl": Family(
        "model.visual",
        None,
        r"model\.visual\.blocks\.\d+",
        (*_QWEN_ATTN, "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
        28,
        pixel_bounds=True,
    ),
    "qwen3_vl": Family(
        "model.visual",
        None,
        r"model\.visual\.blocks\.\d+",
        (*_QWEN_ATTN, "mlp.linear_fc1", "mlp.linear_fc2"),
        32,
        pixel_bounds=True,
    ),
    # Gemma 3 resizes every image to its tower's square size, so any frame keeps the labels right.
    "gemma3": Family(
        "model.vision_tower",
        "model.multi_modal_projector",
        r"model\.vision_tower\.encoder\.layers\.\d+",
        (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.out_proj",
            "mlp.fc1",
            "mlp.fc2",
        ),
        1,
        completion_token_type=0,
    ),
    # LLaVA-OneVision tiles each image (anyres) for its SigLIP tower; any frame is resized.
    "llava_onevision": Family(
        "model.vision_tower",
        "model.multi_modal_projector",
        r"model\.vision_tower\.encoder\.layers\.\d+",
        (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.out_proj",
            "mlp.fc1",
            "mlp.fc2",
        ),
        1,
    ),
    # InternVL: one tile per image (the image processor's crop_to_patches off; tiles per image
    # are refused by visurf.rollout).
    "internvl": Family(
        "model.vision_tower",
        "model.multi_modal_projector",
        r"model\.vision_tower\.encoder\.layer\.\d+",
        (
            "attention.q_proj",
            "attention.k_proj",
            "attention.v_proj",
            "attention.projection_layer",
            "mlp.fc1",
            "mlp.fc2",
        ),
        1,
    ),
    # SmolVLM and Idefics3: a SigLIP-style tower, a pixel-shuffle connector and a Llama decoder.
    # An image's tiles (do_image_splitting) lie along pixel_values' second dimension, one entry
    # per prompt along the first, so visurf.rollout keeps every tile of an image together (every
    # image of a run has the model frame, so every prompt has as many tiles); the tiny models turn
    # splitting off (one 112 px tile per image). Every image or tile is resized to the tower's
    # squares, so any frame keeps the labels right.
    "smolvlm": _SMOLVLM,
    "idefics3": _SMOLVLM,
}

_FIELDS = ", ".join(Family.__dataclass_fields__)


def family_of(model_or_type) -> Family:
    """The table entry of a model (or its config, or a model_type string)."""
    model_type = model_type_of(model_or_type)
    if model_type not in FAMILIES:
        raise ValueError(
            f"model family {model_type!r} is not supported yet: visurf.models.families.FAMILIES has no "
            f"entry for it (needed: {_FIELDS}); supported: {sorted(FAMILIES)}"
        )
    return FAMILIES[model_type]


def model_type_of(obj) -> str:
    if isinstance(obj, str):
        return obj
    config = getattr(obj, "config", obj)
    model_type = getattr(config, "model_type", None)
    if model_type is None:
        raise ValueError(f"{type(obj).__name__} has no config.model_type to look its family up by")
    return model_type


def submodule(model, path: str):
    """`model`'s module at a dotted path, looked up below a peft wrapper too; None if absent."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return base.get_submodule(path)
    except AttributeError:
        return None


def vision_modules(model) -> list:
    """The tower and the projector (where separate): what freezing the vision side freezes."""
    fam = family_of(model)
    paths = [fam.tower] + ([fam.projector] if fam.projector else [])
    found = [submodule(model, p) for p in paths]
    missing = [p for p, m in zip(paths, found) if m is None]
    if missing:
        raise ValueError(
            f"{type(model).__name__} ({model_type_of(model)}) has no module {missing[0]!r}, where "
            "visurf.models.families.FAMILIES says its vision tower is"
        )
    return found


def block_class_names(model) -> set[str]:
    """The classes the model says must not be split across devices (`_no_split_modules`): its
    decoder and vision blocks, FSDP's units."""
    names = set()
    for module in model.modules():
        names |= set(getattr(module, "_no_split_modules", None) or ())
    return names


def block_classes(model) -> set[type]:
    names = block_class_names(model)
    return {type(m) for m in model.modules() if type(m).__name__ in names}


# The tiny models `model.source=tiny` / `tiny_base` build are Qwen2.5-VL.
_TINY_TYPE = "qwen2_5_vl"


def configured_model_type(model_cfg) -> str | None:
    """The model_type a `model=` config will load, found without loading anything: `model.family`
    when the preset names it, the tiny models' own, or `config.json` in `model.path`; None when
    it cannot be known yet (a hub id not downloaded: loading reports that)."""
    if model_cfg.get("family"):
        return str(model_cfg.get("family"))
    if model_cfg.get("source") in ("tiny", "tiny_base"):
        return _TINY_TYPE
    path = model_cfg.get("path")
    if path:
        import json
        from pathlib import Path

        config = Path(str(path)).expanduser() / "config.json"
        if config.exists():
            return json.loads(config.read_text()).get("model_type")
    return None
