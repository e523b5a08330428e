"""One processing path from (prompt, image) pairs to Qwen2.5-VL model inputs.

Where transformers can build the checkpoint's stock processor (`AutoProcessor`), it is used.
Where it cannot — on a machine without torchvision, `Qwen2_5_VLProcessor` fails to build its
video processor — the same inputs (expanded image tokens, `pixel_values`, `image_grid_thw`,
`mm_token_type_ids`) are built here from the PIL image processor and the tokenizer, following
what `Qwen2_5_VLProcessor.__call__` does for images. `tests/test_processing.py` checks both
paths agree wherever both can run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

log = logging.getLogger(__name__)

IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"


class VLProcessor:
    """Builds model inputs for prompts with one image each, and tokenizes completions.

    `backend` is "stock" when the checkpoint's own processor is used, "fallback" otherwise.
    """

    def __init__(self, tokenizer, image_processor, stock=None, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.stock = stock
        self.backend = "stock" if stock is not None else "fallback"
        self.chat_template = chat_template or getattr(tokenizer, "chat_template", None)
        if self.chat_template is None:
            raise ValueError("the checkpoint has no chat template (tokenizer or chat_template.jinja)")
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
        self.merge_size = image_processor.merge_size
        vision_tokens = ("<|vision_start|>", "<|vision_end|>", IMAGE_PAD, VIDEO_PAD)
        self.vision_token_ids = [
            i
            for i in map(tokenizer.convert_tokens_to_ids, vision_tokens)
            if i is not None and i != tokenizer.unk_token_id
        ]
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token")
        self.pad_token_id = tokenizer.pad_token_id
        # The assistant turn ends with the chat template's end-of-turn token.
        self.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if self.eos_token_id is None or self.eos_token_id == tokenizer.unk_token_id:
            self.eos_token_id = tokenizer.eos_token_id

    @classmethod
    def from_pretrained(cls, path: str | Path, prefer_stock: bool = True) -> VLProcessor:
        path = str(path)
        stock = None
        if prefer_stock:
            try:
                stock = AutoProcessor.from_pretrained(path)
            except ImportError as err:  # no torchvision: the video processor cannot be built
                reason = str(err).strip().split(". ")[0]  # the first sentence says which library is missing
                log.info("stock processor unavailable (%s); using visurf's own processing path", reason)
        if stock is not None and hasattr(stock, "image_processor") and hasattr(stock, "tokenizer"):
            return cls(stock.tokenizer, stock.image_processor, stock=stock, chat_template=stock.chat_template)
        tokenizer = AutoTokenizer.from_pretrained(path)
        image_processor = AutoImageProcessor.from_pretrained(path, backend="pil")
        return cls(tokenizer, image_processor, chat_template=_read_chat_template(path, tokenizer))

    def prompt_text(self, prompt: str) -> str:
        """The chat-formatted user turn with one image, ending with the assistant header."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
        )

    def __call__(self, prompts: list[str], images: list) -> dict[str, torch.Tensor]:
        """Left-padded prompt inputs for a batch: one image per prompt."""
        texts = [self.prompt_text(p) for p in prompts]
        if self.stock is not None:
            out = self.stock(
                text=texts, images=images, return_tensors="pt", padding=True, padding_side="left"
            )
            return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
        vision = self.image_processor(images=images, return_tensors="pt")
        grid = vision["image_grid_thw"]
        expanded = []
        for text, thw in zip(texts, grid):
            n = int(thw.prod()) // self.merge_size**2
            if text.count(IMAGE_PAD) != 1:
                raise ValueError(f"expected one {IMAGE_PAD} in the chat text, found {text.count(IMAGE_PAD)}")
            expanded.append(text.replace(IMAGE_PAD, IMAGE_PAD * n))
        enc = self.tokenizer(expanded, return_tensors="pt", padding=True, padding_side="left")
        ids = enc["input_ids"]
        mm_types = torch.zeros_like(ids)
        mm_types[ids == self.image_token_id] = 1
        mm_types[ids == self.video_token_id] = 2
        return {
            "input_ids": ids,
            "attention_mask": enc["attention_mask"],
            "pixel_values": vision["pixel_values"],
            "image_grid_thw": grid,
            "mm_token_type_ids": mm_types,
        }

    def completion_ids(self, completions: list[str]) -> list[list[int]]:
        """Token ids of completion texts, each closed with the end-of-turn token."""
        ids = self.tokenizer(completions, add_special_tokens=False)["input_ids"]
        return [list(x) + [self.eos_token_id] for x in ids]

    def completion_tokens(self, text: str) -> tuple[list[int], list[int]]:
        """One completion text tokenized whole, as the policy writes it, closed with the end-of-turn
        token; and each token's start offset in `text` (the end-of-turn token's is `len(text)`).

        Tokenizing a text in pieces is not the same: BPE merges across the seam (`</think><answer>`
        has a `><` token in many vocabularies), and training on a split tokenization teaches the
        policy token sequences it never writes.
        """
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        starts = [start for start, _ in enc["offset_mapping"]]
        return list(enc["input_ids"]) + [self.eos_token_id], starts + [len(text)]

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def save_pretrained(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        if self.stock is not None:
            self.stock.save_pretrained(out_dir)
            return
        self.tokenizer.save_pretrained(out_dir)
        self.image_processor.save_pretrained(out_dir)
        (out_dir / "chat_template.jinja").write_text(self.chat_template)


def _read_chat_template(path: str, tokenizer) -> str | None:
    """The processor's chat template file if the checkpoint has one, else the tokenizer's."""
    for name in ("chat_template.jinja", "chat_template.json"):
        f = Path(path) / name
        if f.exists():
            if name.endswith(".json"):
                import json

                return json.loads(f.read_text())["chat_template"]
            return f.read_text()
    return getattr(tokenizer, "chat_template", None)
