"""One processing path from (prompt, image) pairs to model inputs, for every model family.

The family's own processor class makes the inputs: `AutoProcessor` where it builds. Where it
cannot (no torchvision, so the video processor of Qwen-VL, InternVL, ... cannot be built), the same
processor class is built for images only, from the tokenizer, the PIL image processor and the chat
template, without its video processor (`backend` says which). Images are passed per prompt.
The end-of-turn token comes from the chat template, the vision tokens from the processor.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import torch
from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer

from visurf.data.prompt import IMAGE

log = logging.getLogger(__name__)

# Processor attributes naming tokens the processor inserts around or for an image: none of them
# may be sampled (an image token in a completion breaks the next forward pass).
_VISION_TOKEN_ATTRS = (
    "image_token",
    "video_token",
    "vision_start_token",
    "vision_end_token",
    "boi_token",
    "eoi_token",
    "fake_image_token",
    "global_image_token",
    "global_image_tag",  # Idefics3's name for <global-img>
    "start_image_token",
    "end_image_token",
)


class VLProcessor:
    """Builds model inputs for prompts with one image each, and tokenizes completions.

    `backend` is "stock" when `AutoProcessor` built the checkpoint's processor, "images_only"
    when the same class was built without its video processor.
    """

    def __init__(self, processor, backend: str = "stock"):
        self.processor = processor
        self.backend = backend
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.chat_template = processor.chat_template or getattr(self.tokenizer, "chat_template", None)
        if self.chat_template is None:
            raise ValueError("the checkpoint has no chat template (tokenizer or chat_template.jinja)")
        tok = self.tokenizer
        if tok.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token")
        self.pad_token_id = tok.pad_token_id
        image_token = getattr(processor, "image_token", None)
        if image_token is None:
            raise ValueError(f"{type(processor).__name__} names no image token (processor.image_token)")
        self.image_token = image_token
        self.image_token_id = tok.convert_tokens_to_ids(image_token)
        self.merge_size = getattr(self.image_processor, "merge_size", None)
        # Special: the tokenizer's named special tokens and every added token (chat markers).
        self._special_ids = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}))
        named = {
            i
            for source in (processor, tok)  # Gemma 3's tokenizer names the soft image token
            for attr in _VISION_TOKEN_ATTRS
            if isinstance(t := getattr(source, attr, None), str)
            and (i := tok.convert_tokens_to_ids(t)) is not None
            and i != tok.unk_token_id
        }
        self.vision_token_ids = sorted(named | self._template_image_ids())
        self.eos_token_id = self._end_of_turn_id()
        self._image_tokens: dict[tuple[int, int], int] = {}

    def _template_image_ids(self) -> set[int]:
        """Special tokens the chat template writes for an image part (`<|vision_start|>`, ...)."""

        def special(content) -> set[int]:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": content}], chat_template=self.chat_template, tokenize=False
            )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return set(ids) & self._special_ids

        text = {"type": "text", "text": "q"}
        return special([{"type": "image"}, text]) - special([text])

    def _end_of_turn_id(self) -> int:
        """The token the chat template closes an assistant turn with (`<|im_end|>`, `<end_of_turn>`)."""
        marker = "visurf-end-of-turn-probe"
        text = self.tokenizer.apply_chat_template(
            [
                {"role": "user", "content": [{"type": "text", "text": "q"}]},
                {"role": "assistant", "content": [{"type": "text", "text": marker}]},
            ],
            chat_template=self.chat_template,
            tokenize=False,
        )
        after = text[text.index(marker) + len(marker) :] if marker in text else ""
        ids = self.tokenizer(after, add_special_tokens=False)["input_ids"] if after.strip() else []
        if ids and ids[0] in self._special_ids:
            return ids[0]
        if self.tokenizer.eos_token_id is None:
            raise ValueError("neither the chat template nor the tokenizer names an end-of-turn token")
        return self.tokenizer.eos_token_id

    @classmethod
    def from_pretrained(cls, path: str | Path, prefer_stock: bool = True) -> VLProcessor:
        path = str(path)
        if prefer_stock:
            try:
                stock = AutoProcessor.from_pretrained(path)
            except (ImportError, ValueError) as err:  # InternVL raises ValueError without torchvision
                reason = str(err).strip().split(". ")[0]  # the first sentence says which library is missing
                log.info("stock processor unavailable (%s); building it for images only", reason)
            else:
                # A directory without a processor config gives a tokenizer alone.
                if hasattr(stock, "image_processor") and hasattr(stock, "tokenizer"):
                    return cls(stock, "stock")
        return cls(images_only_processor(path), "images_only")

    def prompt_text(self, prompt: str, num_images: int = 1) -> str:
        """The chat-formatted user turn with `num_images` images, ending with the assistant header.

        The images come first, or where the prompt's `<image>` markers put them: one marker per
        image, or one marker for all of them (Seg-Zero's prompt opens with `<image>` and a newline:
        the newline then follows the image, as in training). A text-only prompt (no image) drops
        its marker.
        """
        texts = prompt.split(IMAGE)
        markers = len(texts) - 1
        if markers == 0:
            parts = [None] * num_images + [prompt]
        elif markers == num_images:
            parts = [texts[0]] + [p for text in texts[1:] for p in (None, text)]
        elif markers == 1:
            parts = [texts[0], *([None] * num_images), texts[1]]
        else:
            raise ValueError(
                f"the prompt has {markers} {IMAGE} markers for {num_images} images: {prompt!r:.200}"
            )
        content = [{"type": "image"} if p is None else {"type": "text", "text": p} for p in parts if p != ""]
        messages = [{"role": "user", "content": content}]
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
        )

    def __call__(self, prompts: list[str], images: list) -> dict[str, torch.Tensor]:
        """Left-padded prompt inputs for a batch. `images[i]` is prompt i's image, its list of
        images, or None (a text-only prompt); unless every prompt has one image, `image_index`
        [N, K] says which images each row shows (visurf.rollout.sequences)."""
        per_row = [as_image_list(x) for x in images]
        out = self.processor(
            text=[self.prompt_text(p, len(x)) for p, x in zip(prompts, per_row)],
            # per prompt: Gemma 3 / SmolVLM refuse a flat list
            **({"images": per_row} if any(per_row) else {}),
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
        out = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
        counts = [len(x) for x in per_row]
        pixels = out.get("pixel_values")
        if pixels is not None and pixels.dim() == 5 and set(counts) != {1}:
            raise ValueError(
                f"{type(self.processor).__name__} lays out pixel_values per prompt, so each prompt "
                f"must have exactly one image (the batch has {sorted(set(counts))} per prompt); rows "
                "without an image or with several take a family that lays them out per image "
                "(Qwen-VL, Gemma 3, InternVL)"
            )
        if set(counts) != {1}:  # absent: row i shows image i (visurf.rollout.sequences)
            out["image_index"] = image_rows(counts)
        return out

    def tokens_added_by_image(self, width: int, height: int) -> int:
        """How many tokens one image of this size adds to a chat-formatted prompt beyond its
        text: the family's own expansion of its image placeholder (measured once per size on a
        blank image, so any family, tiling included, is counted as its processor counts it)."""
        if (width, height) not in self._image_tokens:
            from PIL import Image

            with_image = self([""], [Image.new("RGB", (width, height))])["input_ids"].shape[1]
            text = self.tokenizer(self.prompt_text(""), add_special_tokens=False)["input_ids"]
            self._image_tokens[(width, height)] = with_image - len(text)
        return self._image_tokens[(width, height)]

    def pixel_bounds(self) -> tuple[int | None, int | None]:
        """(min_pixels, max_pixels) as the image processor holds them (`size`'s shortest_edge and
        longest_edge): meaningful only for a family whose processor bounds an image's pixel count
        (`Family.pixel_bounds`: Qwen-VL)."""
        size = getattr(self.image_processor, "size", None)

        def read(key):
            value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
            return int(value) if value else None

        return read("shortest_edge"), read("longest_edge")

    def set_pixel_bounds(self, min_pixels: int | None, max_pixels: int | None) -> None:
        """The image processor keeps each image's pixel count in [min_pixels, max_pixels] (None
        keeps the checkpoint's own); the model directory a run saves holds them."""
        low, high = self.pixel_bounds()
        size = {"shortest_edge": min_pixels or low, "longest_edge": max_pixels or high}
        self.image_processor.size = {k: v for k, v in size.items() if v is not None}
        self._image_tokens.clear()  # the counts depend on the bounds

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
        if self.backend == "stock":
            self.processor.save_pretrained(out_dir)
            return
        # An images-only processor would save a config without its video processor; the parts
        # are saved instead, so the directory loads like the checkpoint it came from.
        self.tokenizer.save_pretrained(out_dir)
        self.image_processor.save_pretrained(out_dir)
        (out_dir / "chat_template.jinja").write_text(self.chat_template)


def as_image_list(images) -> list:
    """A row's images as a list: none (a text-only row), its one image, or its list of images."""
    if images is None:
        return []
    return list(images) if isinstance(images, (list, tuple)) else [images]


def images_of(example) -> list:
    """An example's images, in its prompt's order: `example.image` is one image or a list of
    them, [] for a text-only example."""
    return as_image_list(getattr(example, "image", None))


def image_rows(counts: list[int]) -> torch.Tensor:
    """[N, K] the images of each row, numbered in order, -1 where a row has fewer than K."""
    k = max(counts, default=0)
    index = torch.full((len(counts), k), -1, dtype=torch.long)
    start = 0
    for row, count in enumerate(counts):
        index[row, :count] = torch.arange(start, start + count)
        start += count
    return index


def image_budget(processor: VLProcessor, frame: int, context: int | None, pixel_bounds: bool) -> dict:
    """What one frame x frame image costs the prompt: its tokens as the processor counts them,
    the pixel bounds in force (`pixel_bounds`: the family takes them; else None) and the model's
    context."""
    low, high = processor.pixel_bounds() if pixel_bounds else (None, None)
    return {
        "frame": int(frame),
        "tokens_per_image": processor.tokens_added_by_image(int(frame), int(frame)),
        "min_pixels": low,
        "max_pixels": high,
        "context": context,
    }


def processor_class(path: str) -> type:
    """The checkpoint's processor class, by its config's model_type."""
    import transformers
    from transformers.models.auto.auto_mappings import PROCESSOR_MAPPING_NAMES

    model_type = _model_type(path)
    name = PROCESSOR_MAPPING_NAMES.get(model_type)
    if name is None:
        raise ValueError(f"transformers has no processor class for model_type {model_type!r} ({path})")
    return getattr(transformers, name)


def _model_type(path: str) -> str:
    """The config's model_type; a LoRA run's model/ holds adapters only: its base model's."""
    adapter = Path(path) / "adapter_config.json"
    if not (Path(path) / "config.json").exists() and adapter.exists():
        path = json.loads(adapter.read_text())["base_model_name_or_path"]
    return AutoConfig.from_pretrained(path).model_type


def images_only_processor(path: str):
    """The checkpoint's processor class, built from its tokenizer, PIL image processor and chat
    template, without the sub-processors that need torchvision (video)."""
    cls = processor_class(path)
    kept = [a for a in cls.get_attributes() if "video" not in a]
    # A subclass that declares only the kept parts: the base class checks and stores exactly
    # those, and the family's own __call__ (image token expansion, token types) runs unchanged.
    images_only = type(cls.__name__, (cls,), {"get_attributes": classmethod(lambda c: kept)})
    parts = {"image_processor": AutoImageProcessor.from_pretrained(path, backend="pil")}
    parts["tokenizer"] = AutoTokenizer.from_pretrained(path)
    missing = sorted(set(kept) - set(parts))
    if missing:
        raise ValueError(f"cannot build {cls.__name__} for images only: no loader for {missing}")
    # The processor's own settings (LLaVA-OneVision's num_image_tokens, ...) as a saved processor has them.
    accepted = inspect.signature(cls.__init__).parameters
    config = Path(path) / "processor_config.json"
    saved = json.loads(config.read_text()) if config.exists() else {}
    settings = {k: v for k, v in saved.items() if k in accepted and k not in kept and k != "chat_template"}
    # A left-out part the class's __init__ requires (SmolVLM's video_processor) is passed as None:
    # the base class, declaring only the kept parts, never stores it.
    left_out = {
        a: None
        for a in cls.get_attributes()
        if a not in kept and a in accepted and accepted[a].default is inspect.Parameter.empty
    }
    return images_only(
        **parts, **left_out, **settings, chat_template=_read_chat_template(path, parts["tokenizer"])
    )


def _read_chat_template(path: str, tokenizer) -> str | None:
    """The processor's chat template file if the checkpoint has one, else the tokenizer's."""
    for name in ("chat_template.jinja", "chat_template.json"):
        f = Path(path) / name
        if f.exists():
            if name.endswith(".json"):
                return json.loads(f.read_text())["chat_template"]
            return f.read_text()
    return getattr(tokenizer, "chat_template", None)
