"""A tiny random SAM2, built locally and saved as an ordinary SAM2 model directory (for CPU tests).

Same classes as a real checkpoint (transformers' `Sam2Model`, or `Sam2VideoModel` for the layout
facebook/sam2-hiera-large is published in), tiny sizes: a 256-pixel input square, a four-stage
Hiera backbone of 16 to 128 channels and 32-wide prompt encoder and mask decoder. It runs SAM2's
whole path (image embeddings, box and point prompts, three proposals and their scores, masks at
the original size) in well under a second on a CPU; its masks are random but deterministic.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from visurf.io.cache import build_entry, cache_dir

log = logging.getLogger(__name__)

SIDE = 256  # input square; the prompt grid is SIDE / 16 and the low-resolution masks SIDE / 4
TINY_SAM2_VERSION = 1


def tiny_sam2_config(layout: str = "image"):
    """The configuration: `layout="image"` a `Sam2Config`, `"video"` a `Sam2VideoConfig` with the
    same image parts and a small memory attention."""
    from transformers import Sam2Config, Sam2VideoConfig
    from transformers.models.sam2 import (
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    # Constraints: channels listed deepest first; feature sizes SIDE / 4, / 8, / 16; a global
    # attention block must not open a stage after the first (it pools); the prompt encoder's and
    # decoder's width equals the FPN's.
    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        num_attention_heads=1,
        image_size=[SIDE, SIDE],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[8, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[SIDE // 4] * 2, [SIDE // 8] * 2, [SIDE // 16] * 2],
        fpn_hidden_size=32,
    )
    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=SIDE, patch_size=16, mask_input_channels=4)
    decoder = Sam2MaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32
    )
    if layout == "image":
        return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    if layout == "video":
        return Sam2VideoConfig(
            vision_config=vision.to_dict(),
            prompt_encoder_config=prompt.to_dict(),
            mask_decoder_config=decoder.to_dict(),
            image_size=SIDE,
            memory_attention_hidden_size=32,
            memory_attention_num_layers=1,
            memory_attention_feed_forward_hidden_size=64,
            memory_attention_rope_feat_sizes=[SIDE // 16] * 2,
            memory_encoder_hidden_size=32,
            memory_encoder_output_channels=16,
        )
    raise ValueError(f"layout must be 'image' or 'video', got {layout!r}")


def build_tiny_sam2(out: Path, layout: str = "image", seed: int = 0) -> Path:
    """Write a random tiny SAM2 model directory: weights, config, and the processor's settings."""
    from transformers import Sam2Model, Sam2VideoModel

    from visurf.models.sam2_processing import Sam2ImageProcessorTorch

    out = Path(out)
    torch.manual_seed(seed)
    config = tiny_sam2_config(layout)
    model = (Sam2Model if layout == "image" else Sam2VideoModel)(config).eval()
    model.save_pretrained(out)
    # The processor settings a saved Sam2Processor writes: the prompt square and the image's.
    image = Sam2ImageProcessorTorch(
        size={"height": SIDE, "width": SIDE}, mask_size={"height": 64, "width": 64}
    )
    settings = {"processor_class": "Sam2Processor", "target_size": SIDE, "point_pad_value": -10}
    (out / "processor_config.json").write_text(
        json.dumps({**settings, "image_processor": image.to_dict()}, indent=2)
    )
    return out


def tiny_sam2_dir(layout: str = "image") -> Path:
    """The tiny SAM2 of `layout`, built once under $VISURF_CACHE/models."""
    out = cache_dir() / "models" / f"tiny-sam2-{layout}-v{TINY_SAM2_VERSION}"

    def build(folder: Path) -> None:
        log.info("building the tiny SAM2 at %s", out)
        build_tiny_sam2(folder, layout)

    return build_entry(out, build)
