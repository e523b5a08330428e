"""The model config of each family `python -m visurf.models.tiny --family F` builds.

Every family shares the tokenizer and chat template of `visurf.models.tiny` (the Qwen special
tokens, which these processors look up by name); what differs is transformers' model class, its
config, and the image processor's patch size (Qwen3-VL's patches are 16 px, so its frame is a
multiple of 32). Sizes come from `TinyConfig`, so every family is about the same size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    InternVLConfig,
    InternVLForConditionalGeneration,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil


@dataclass(frozen=True)
class TinyFamily:
    model_class: type
    build_config: Callable  # (TinyConfig, tokenizer) -> the model's config
    frame_multiple: int  # patch size x spatial merge
    tokenizer: dict = field(default_factory=dict)  # train_tokenizer's keywords (default: Qwen's tokens)
    write_processor: Callable | None = None  # (out, TinyConfig): None = the Qwen2-VL image processor


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


def qwen2_5_vl_config(cfg, tokenizer) -> Qwen2_5_VLConfig:
    ids = tokenizer.convert_tokens_to_ids
    head_dim = cfg.hidden_size // cfg.num_heads
    # mrope splits each rotary half (head_dim / 2) into temporal, height and width sections.
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
            bos_token_id=ids("<|endoftext|>"),
            eos_token_id=ids("<|im_end|>"),
            pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=cfg.vision_depth,
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=2 * cfg.vision_hidden_size,
            num_heads=cfg.vision_heads,
            out_hidden_size=cfg.hidden_size,
            window_size=112,
            fullatt_block_indexes=[cfg.vision_depth - 1],
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


# Gemma 3: its turn markers and image tokens; the image is one <start_of_image> in the chat text,
# which the processor expands to <start_of_image>, `image_seq_length` soft tokens, <end_of_image>.
GEMMA3_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<start_of_image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
GEMMA3_IMAGE_TOKENS = 16  # 4 x 4 pooled from the tower's 8 x 8 patches of a 112 px image


def gemma3_config(cfg, tokenizer) -> Gemma3Config:
    ids = tokenizer.convert_tokens_to_ids
    head_dim = cfg.hidden_size // cfg.num_heads
    return Gemma3Config(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads,
            head_dim=head_dim,
            query_pre_attn_scalar=head_dim,
            max_position_embeddings=4096,
            sliding_window=512,
            pad_token_id=ids("<pad>"),
            eos_token_id=ids("<end_of_turn>"),
            bos_token_id=ids("<bos>"),
        ),
        vision_config=dict(
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=2 * cfg.vision_hidden_size,
            num_hidden_layers=cfg.vision_depth,
            num_attention_heads=cfg.vision_heads,
            image_size=112,
            patch_size=14,
        ),
        mm_tokens_per_image=GEMMA3_IMAGE_TOKENS,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )


def write_gemma3_processor(out, cfg) -> None:
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    # The tower's own size: the processor resizes every image to it.
    Gemma3ImageProcessorPil(
        size={"height": 112, "width": 112}, image_mean=[0.85, 0.92, 0.85], image_std=[0.3] * 3
    ).save_pretrained(out)
    (out / "processor_config.json").write_text(
        json.dumps({"processor_class": "Gemma3Processor", "image_seq_length": GEMMA3_IMAGE_TOKENS}, indent=2)
    )


# LLaVA-OneVision: Qwen2's chat layout with one <image> placeholder, which the processor expands
# to the base image's and its tiles' tokens (anyres); the tower sees 112 px squares.
LLAVA_OV_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]
LLAVA_OV_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_OV_SIZE = 112


def llava_onevision_config(cfg, tokenizer) -> LlavaOnevisionConfig:
    ids = tokenizer.convert_tokens_to_ids
    return LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", **_text(cfg, tokenizer, {})),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=2 * cfg.vision_hidden_size,
            num_hidden_layers=cfg.vision_depth,
            num_attention_heads=cfg.vision_heads,
            image_size=LLAVA_OV_SIZE,
            patch_size=14,
        ),
        image_token_index=ids("<image>"),
        video_token_index=ids("<video>"),
        vision_feature_select_strategy="full",
        image_grid_pinpoints=[[LLAVA_OV_SIZE, LLAVA_OV_SIZE]],
    )


def write_llava_onevision_processor(out, cfg) -> None:
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    LlavaOnevisionImageProcessorPil(
        size={"height": LLAVA_OV_SIZE, "width": LLAVA_OV_SIZE},
        image_grid_pinpoints=[[LLAVA_OV_SIZE, LLAVA_OV_SIZE]],
        image_mean=[0.85, 0.92, 0.85],
        image_std=[0.3] * 3,
    ).save_pretrained(out)
    (out / "processor_config.json").write_text(
        json.dumps(
            {
                "processor_class": "LlavaOnevisionProcessor",
                "num_image_tokens": (LLAVA_OV_SIZE // 14) ** 2,
                "vision_feature_select_strategy": "full",
                "vision_aspect_ratio": "anyres_max_9",
            },
            indent=2,
        )
    )


# InternVL: Qwen2's chat layout with one <IMG_CONTEXT> per image, which the processor expands to
# <img>, `image_seq_length` context tokens per tile, </img>; one 112 px tile per image here.
INTERNVL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
]
INTERNVL_TEMPLATE = LLAVA_OV_TEMPLATE.replace("<image>\n", "<IMG_CONTEXT>\n")
INTERNVL_IMAGE_TOKENS = 16  # 8 x 8 patches of 14 px, pixel-shuffled by 0.5


def internvl_config(cfg, tokenizer) -> InternVLConfig:
    return InternVLConfig(
        text_config=dict(model_type="qwen2", **_text(cfg, tokenizer, {})),
        vision_config=dict(
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=2 * cfg.vision_hidden_size,
            num_hidden_layers=cfg.vision_depth,
            num_attention_heads=cfg.vision_heads,
            image_size=[112, 112],
            patch_size=[14, 14],
        ),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=INTERNVL_IMAGE_TOKENS,
    )


def write_internvl_processor(out, cfg) -> None:
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    GotOcr2ImageProcessorPil(
        size={"height": 112, "width": 112},
        crop_to_patches=False,
        image_mean=[0.85, 0.92, 0.85],
        image_std=[0.3] * 3,
    ).save_pretrained(out)
    (out / "processor_config.json").write_text(
        json.dumps(
            {"processor_class": "InternVLProcessor", "image_seq_length": INTERNVL_IMAGE_TOKENS}, indent=2
        )
    )


# SmolVLM (and Idefics3, its predecessor with the same model and processor layout): the chat
# layout "User:<image>...<end_of_utterance>\nAssistant:" with one <image> per image, which the
# processor expands to <fake_token_around_image><global-img>, `image_seq_len` <image> tokens,
# <fake_token_around_image>. The image processor resizes every image to one 112 px square without
# splitting it into tiles (do_image_splitting=False; tests/integration/test_families.py turns it on).
SMOLVLM_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<global-img>",
    "<image>",
    "<video>",
]
# SmolVLM2's own template (as `transformers.models.smolvlm.processing_smolvlm` ships it);
# Idefics3's differs only in its first token (<|begin_of_text|>).
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'] is string %}{{': ' + message['content']}}"
    "{% else %}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
SMOLVLM_SIZE = 112
SMOLVLM_IMAGE_TOKENS = 16  # 8 x 8 patches of 14 px, pixel-shuffled by a scale factor of 2
SMOLVLM_TOKENIZER = dict(
    special_tokens=SMOLVLM_TOKENS,
    chat_template=SMOLVLM_TEMPLATE,
    bos_token="<|im_start|>",
    eos_token="<end_of_utterance>",
    pad_token="<|endoftext|>",
    extra_special_tokens={
        "fake_image_token": "<fake_token_around_image>",
        "image_token": "<image>",
        "global_image_token": "<global-img>",
        "end_of_utterance_token": "<end_of_utterance>",
        "video_token": "<video>",
    },
)


def _smolvlm_config(config_class):
    def build(cfg, tokenizer):
        ids = tokenizer.convert_tokens_to_ids
        text = {**_text(cfg, tokenizer, {}), "eos_token_id": ids("<end_of_utterance>")}
        return config_class(
            text_config=dict(model_type="llama", **text),
            vision_config=dict(
                hidden_size=cfg.vision_hidden_size,
                intermediate_size=2 * cfg.vision_hidden_size,
                num_hidden_layers=cfg.vision_depth,
                num_attention_heads=cfg.vision_heads,
                image_size=SMOLVLM_SIZE,
                patch_size=14,
            ),
            scale_factor=2,
            image_token_id=ids("<image>"),
            pad_token_id=ids("<|endoftext|>"),
        )

    return build


def _write_smolvlm_processor(image_processor_class, processor_class: str):
    def write(out, cfg) -> None:
        image_processor_class(
            size={"longest_edge": SMOLVLM_SIZE},
            max_image_size={"longest_edge": SMOLVLM_SIZE},
            do_image_splitting=False,
            image_mean=[0.85, 0.92, 0.85],
            image_std=[0.3] * 3,
        ).save_pretrained(out)
        (out / "processor_config.json").write_text(
            json.dumps({"processor_class": processor_class, "image_seq_len": SMOLVLM_IMAGE_TOKENS}, indent=2)
        )

    return write


def _smolvlm_family(model_class, config_class, image_processor_class, processor_class: str) -> TinyFamily:
    return TinyFamily(
        model_class,
        _smolvlm_config(config_class),
        1,
        tokenizer=SMOLVLM_TOKENIZER,
        write_processor=_write_smolvlm_processor(image_processor_class, processor_class),
    )


TINY_FAMILIES = {
    "qwen2_5_vl": TinyFamily(Qwen2_5_VLForConditionalGeneration, qwen2_5_vl_config, 28),
    "qwen2_vl": TinyFamily(Qwen2VLForConditionalGeneration, qwen2_vl_config, 28),
    "qwen3_vl": TinyFamily(Qwen3VLForConditionalGeneration, qwen3_vl_config, 32),
    "gemma3": TinyFamily(
        Gemma3ForConditionalGeneration,
        gemma3_config,
        1,
        tokenizer=dict(
            special_tokens=GEMMA3_TOKENS,
            chat_template=GEMMA3_TEMPLATE,
            bos_token="<bos>",
            eos_token="<end_of_turn>",
            pad_token="<pad>",
            extra_special_tokens={
                "boi_token": "<start_of_image>",
                "eoi_token": "<end_of_image>",
                "image_token": "<image_soft_token>",
            },
        ),
        write_processor=write_gemma3_processor,
    ),
    "llava_onevision": TinyFamily(
        LlavaOnevisionForConditionalGeneration,
        llava_onevision_config,
        1,
        tokenizer=dict(special_tokens=LLAVA_OV_TOKENS, chat_template=LLAVA_OV_TEMPLATE),
        write_processor=write_llava_onevision_processor,
    ),
    "internvl": TinyFamily(
        InternVLForConditionalGeneration,
        internvl_config,
        1,
        tokenizer=dict(
            special_tokens=INTERNVL_TOKENS,
            chat_template=INTERNVL_TEMPLATE,
            extra_special_tokens={
                "start_image_token": "<img>",
                "end_image_token": "</img>",
                "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>",
            },
        ),
        write_processor=write_internvl_processor,
    ),
    "smolvlm": _smolvlm_family(
        SmolVLMForConditionalGeneration, SmolVLMConfig, SmolVLMImageProcessorPil, "SmolVLMProcessor"
    ),
    "idefics3": _smolvlm_family(
        Idefics3ForConditionalGeneration, Idefics3Config, Idefics3ImageProcessorPil, "Idefics3Processor"
    ),
}
