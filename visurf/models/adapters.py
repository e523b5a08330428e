"""LoRA and QLoRA adapters (conf/peft/*.yaml) on a loaded policy, through `peft` and `bitsandbytes`.

With adapters the base weights stay frozen, so the KL reference is the same network with its
adapters disabled (`PeftModel.disable_adapter()`): no second copy of the model is kept.

QLoRA quantises the base at load time: `quantization_config(cfg.peft)` is passed to
`from_pretrained`, then `apply_adapters` adds the (full-precision) LoRA weights on top.
"""

from __future__ import annotations

import re

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

from visurf.models.families import FAMILIES, family_of

# The text decoder's projections (Llama / Qwen / Gemma naming). Vision towers use some of the
# same names (Qwen2.5-VL's model.visual.blocks.N.mlp.gate_proj), so a plain name list would adapt
# them too: the default is a regex that leaves the vision tower out.
TEXT_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Vision towers and projectors by the names families give them (Qwen's `visual`, LLaVA's and
# Gemma 3's `vision_tower`, SmolVLM's `vision_model` and `connector`): kept out of the text
# targets and QLoRA.
VISION_MODULES = r".*(?:visual|vision_tower|vision_model|multi_modal_projector|connector)"

COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _alternatives(names) -> str:
    return "|".join(re.escape(n) for n in names)


def target_modules(peft_cfg, model_type: str | None = None) -> str:
    """The regex (peft full-matches it against module names) of the layers that get adapters.

    `target_modules: null` = the text decoder's projections; a list of layer names (suffixes)
    is confined to the text decoder the same way; a string is used as the regex itself.
    `vision: true` adds the vision tower's blocks (the family's `vision_projections` in them, or
    for a list the same names): of the family `model_type`, or of any family when None (a saved
    adapter is loaded back into the model it was trained on, so the union matches the same layers).
    """
    given = peft_cfg.get("target_modules")
    if isinstance(given, str):
        return given
    text_names = list(given) if given else TEXT_PROJECTIONS
    text = rf"(?!{VISION_MODULES}\.).*\.(?:{_alternatives(text_names)})"
    if not peft_cfg.get("vision", False):
        return text
    families = [family_of(model_type)] if model_type else list(FAMILIES.values())
    vision = []
    for fam in families:
        names = list(given) if given else fam.vision_projections
        vision.append(rf"{fam.vision_blocks}\.(?:.*\.)?(?:{_alternatives(names)})")
    return "|".join([text, *dict.fromkeys(vision)])


def compute_dtype(peft_cfg) -> torch.dtype:
    name = str(peft_cfg.get("compute_dtype", "float32"))
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"peft.compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def quantization_config(peft_cfg):
    """The `BitsAndBytesConfig` to load the base with for `peft=qlora`; None otherwise."""
    if peft_cfg is None or peft_cfg.name != "qlora":
        return None
    from transformers import BitsAndBytesConfig

    # Naming skip modules replaces transformers' default (the output head), so it is listed too.
    skip = ["lm_head"] if peft_cfg.get("quantize_vision", False) else ["lm_head", VISION_MODULES]
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=str(peft_cfg.get("quant_type", "nf4")),
        bnb_4bit_use_double_quant=bool(peft_cfg.get("double_quant", True)),
        bnb_4bit_compute_dtype=compute_dtype(peft_cfg),
        llm_int8_skip_modules=skip,
    )


def lora_config(peft_cfg, model_type: str | None = None) -> LoraConfig:
    return LoraConfig(
        r=int(peft_cfg.r),
        lora_alpha=float(peft_cfg.alpha),
        lora_dropout=float(peft_cfg.dropout),
        target_modules=target_modules(peft_cfg, model_type),
        bias="none",
    )


def is_quantized(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def keep_trainable_layout(model) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference.

    On CPUs with AVX512-BF16, a Linear4bit run in eval mode without gradients (generation)
    repacks its weight for a faster kernel, for good; that kernel has no autograd, so the
    training passes after the first rollout would get no input gradient (or fail on biases).
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def apply_adapters(model, peft_cfg) -> PeftModel:
    """Wrap `model` in a `PeftModel` with trainable LoRA weights; every base weight is frozen."""
    if peft_cfg.name not in ("lora", "qlora"):
        raise ValueError(f"peft.name must be none, lora or qlora; got {peft_cfg.name!r}")
    if peft_cfg.name == "qlora" and not is_quantized(model):
        raise ValueError(
            "peft=qlora needs the base loaded in 4 bits: pass quantization_config(cfg.peft) to load_policy"
        )
    if is_quantized(model):
        # Freezes the base and upcasts its non-quantised fp16/bf16 weights (norms, embeddings) to
        # fp32 for stable training. Gradient checkpointing stays as model.gradient_checkpointing set
        # it (non-reentrant there, so inputs need no requires_grad hook).
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        keep_trainable_layout(model)
    model_type = model.config.model_type
    if peft_cfg.get("vision", False):
        family_of(model_type)  # an unknown family is refused here, not left without vision adapters
    adapted = get_peft_model(model, lora_config(peft_cfg, model_type))  # refuses targets that match nothing
    tower = family_of(model_type).tower + "." if peft_cfg.get("vision", False) else None
    if tower and not any(n.startswith(tower) for n in lora_layers(adapted)):
        raise ValueError(
            f"peft.vision=true matched no layer of {model_type}'s vision tower "
            f"({family_of(model_type).vision_blocks}); check peft.target_modules"
        )
    return adapted


def lora_layers(model) -> list[str]:
    """Names of the layers that carry LoRA weights, relative to the base model."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    return [n for n, m in base.named_modules() if isinstance(m, LoraLayer)]
