"""The model config of each family `python -m visurf.models.tiny --family F` builds.

Every family shares the tokenizer and chat template of `visurf.models.tiny` (the Qwen special
tokens, which these processors look up by name); what differs is transformers' model class, its
config, and the image processor's patch size (Qwen3-VL's patches are 16 px, so its frame is a
multiple of 32). Sizes come from `TinyConfig`, so every family is about the same size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import (
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
)


@dataclass(frozen=True)
class TinyFamily:
    model_class: type
    build_config: Callable  # (TinyConfig, tokenizer) -> the model's config
    frame_multiple: int  # patch size x spatial merge


def _token_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def _text(cfg, tokenizer, rope: dict) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, **rope},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
    )


def _mrope(head_dim: int) -> list[int]:
    # mrope splits each rotary half (head_dim / 2) into temporal, height and width sections.
    half = head_dim // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def qwen2_vl_config(cfg, tokenizer) -> Qwen2VLConfig:
    mrope = _mrope(cfg.hidden_size // cfg.num_heads)
    return Qwen2VLConfig(
        text_config=_text(cfg, tokenizer, {"mrope_section": mrope}),
        vision_config=dict(
            depth=cfg.vision_depth,
            embed_dim=cfg.vision_hidden_size,
            hidden_size=cfg.hidden_size,  # Qwen2-VL's merger output: the decoder's width
            mlp_ratio=2,
            num_heads=cfg.vision_heads,
        ),
        **_token_ids(tokenizer),
    )


def qwen3_vl_config(cfg, tokenizer) -> Qwen3VLConfig:
    head_dim = cfg.hidden_size // cfg.num_heads
    text = _text(cfg, tokenizer, {"mrope_section": _mrope(head_dim), "mrope_interleaved": True})
    return Qwen3VLConfig(
        text_config={**text, "head_dim": head_dim},
        vision_config=dict(
            depth=cfg.vision_depth,
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=2 * cfg.vision_hidden_size,
            num_heads=cfg.vision_heads,
            out_hidden_size=cfg.hidden_size,
            patch_size=16,
            num_position_embeddings=256,  # a 16 x 16 grid of learnt positions, interpolated
            # Every vision block feeds a decoder layer too (DeepStack), so scoring must carry
            # these per-image features along with the merged image tokens.
            deepstack_visual_indexes=list(range(cfg.vision_depth)),
        ),
        **_token_ids(tokenizer),
    )


def _qwen2_5_vl_config(cfg, tokenizer):
    from visurf.models.tiny import build_config

    return build_config(cfg, tokenizer)


TINY_FAMILIES = {
    "qwen2_5_vl": TinyFamily(Qwen2_5_VLForConditionalGeneration, _qwen2_5_vl_config, 28),
    "qwen2_vl": TinyFamily(Qwen2VLForConditionalGeneration, qwen2_vl_config, 28),
    "qwen3_vl": TinyFamily(Qwen3VLForConditionalGeneration, qwen3_vl_config, 32),
}
