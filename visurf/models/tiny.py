"""Build a tiny random vision-language model and save it as an ordinary HF model directory.

    python -m visurf.models.tiny --out DIR [--family qwen2_5_vl|qwen2_vl|qwen3_vl|gemma3|llava_onevision|internvl|smolvlm|idefics3]

The directory holds transformers' own model class of the family (`Qwen2_5_VLForConditionalGeneration`
by default) with a small config, a byte-level BPE tokenizer trained here with `tokenizers` on the
synthetic corpus (with the special tokens the family's processor needs), the family's image
processor and a chat template, so it loads through the same Auto classes and code paths as a real
checkpoint. The default (Qwen2.5-VL) build is the one `model=tiny` caches; other families change
the model config, the image processor and, for Gemma 3, LLaVA-OneVision, InternVL, SmolVLM and
Idefics3, the tokens and chat template (`visurf.models.tiny_families`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2.5-VL's chat layout for one user turn with images, without the default system message
# (a tiny model reads every prompt token on a CPU).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class TinyConfig:
    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 64
    vision_heads: int = 4
    frame: int = 112  # the model's square image frame, a multiple of 28
    seed: int = 0


def train_tokenizer(
    corpus: Iterable[str],
    vocab_size: int,
    special_tokens: list[str] = SPECIAL_TOKENS,
    chat_template: str = CHAT_TEMPLATE,
    **named_tokens,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer; `named_tokens` (eos_token, pad_token, ..., extra_special_tokens)
    default to Qwen's."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    named_tokens = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", **named_tokens}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=4096, **named_tokens)
    fast.chat_template = chat_template
    return fast


def default_corpus(frame: int) -> list[str]:
    """Text of the synthetic world: prompts, think texts and answers in the model frame."""
    from visurf.data.prompt import build_prompt
    from visurf.data.synth import SynthConfig, corpus_texts

    size = -(-frame // 28) * 28  # the synthetic world's frames are multiples of 28 (Qwen3-VL's of 32)
    texts = corpus_texts(SynthConfig(image_size=size, novel_fraction=0.5), num=3000)
    texts += corpus_texts(SynthConfig(image_size=size, novel_fraction=0.5, grid=4), num=1000)
    texts += [build_prompt(t) for t in texts[:200]]
    # Every coordinate value appears so each number is learnt as a (few) token(s).
    texts += [" ".join(str(i) for i in range(frame + 1))] * 5
    return texts


def build_config(cfg: TinyConfig, tokenizer) -> Qwen2_5_VLConfig:
    """The default family's (Qwen2.5-VL) model config; every family's builder is in tiny_families."""
    from visurf.models.tiny_families import qwen2_5_vl_config

    return qwen2_5_vl_config(cfg, tokenizer)


def build_tiny(
    out: str | Path,
    cfg: TinyConfig | None = None,
    corpus: Iterable[str] | None = None,
    family: str = "qwen2_5_vl",
) -> Path:
    """Write a randomly initialised tiny model directory of `family` (a model_type) to `out`."""
    from visurf.models.tiny_families import TINY_FAMILIES

    cfg = cfg or TinyConfig()
    if family not in TINY_FAMILIES:
        raise ValueError(f"--family must be one of {sorted(TINY_FAMILIES)}, got {family!r}")
    spec = TINY_FAMILIES[family]
    if cfg.frame % spec.frame_multiple:
        raise ValueError(f"frame must be a multiple of {spec.frame_multiple} for {family}, got {cfg.frame}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(
        corpus if corpus is not None else default_corpus(cfg.frame), cfg.vocab_size, **spec.tokenizer
    )
    torch.manual_seed(cfg.seed)
    model = spec.model_class(spec.build_config(cfg, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # The frame's pixels are the image processor's only size, so images keep the model frame.
    pixels = cfg.frame * cfg.frame
    # Normalised around the synthetic world's light background, so that a background patch is
    # near 0 and shapes stand out: with CLIP's statistics every patch shares a large constant
    # part, and a small random vision tower learns to amplify that instead of the content.
    (out / "chat_template.jinja").write_text(tokenizer.chat_template)
    (out / "visurf_tiny.json").write_text(__import__("json").dumps(asdict(cfg), indent=2))
    if spec.write_processor is not None:
        spec.write_processor(out, cfg)
        return out
    unit = spec.frame_multiple  # one merged patch: the smallest image the processor keeps
    Qwen2VLImageProcessorPil(
        min_pixels=min(pixels, 4 * unit * unit),
        max_pixels=pixels,
        patch_size=unit // 2,
        image_mean=[0.85, 0.92, 0.85],
        image_std=[0.3, 0.3, 0.3],
    ).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output model directory")
    parser.add_argument(
        "--family",
        default="qwen2_5_vl",
        help="model_type: qwen2_5_vl, qwen2_vl, qwen3_vl, gemma3, llava_onevision, internvl, smolvlm, idefics3",
    )
    for name, value in asdict(TinyConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    out, family = args.pop("out"), args.pop("family")
    path = build_tiny(out, TinyConfig(**args), family=family)
    from transformers import AutoModelForImageTextToText

    n = sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(path).parameters())
    print(f"wrote {path} ({n / 1e6:.2f}M parameters)")


if __name__ == "__main__":
    main()
