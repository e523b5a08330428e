"""Examples too long for the model: the prompt (chat text, image tokens included) and the label,
and the prompt and the longest completion the run may generate, must fit the model's context, or
the label would be cut (transformers only warns) or the image tokens pushed out of a window."""

from __future__ import annotations

import logging
from collections.abc import Callable

from visurf.data.errors import BadRowError, DataError


def model_context(model) -> int | None:
    """The model's context in tokens (`max_position_embeddings` of its text config), if it says."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "max_position_embeddings", None)
    return int(value) if value else None


CHUNK = 256  # rows tokenized at a time: the token lists of a whole split would grow with it


def image_count(example) -> int:
    """The images of an example's prompt: the length of its list of images ([]: a text-only row),
    else one (an image, decoded or not yet)."""
    image = example.image
    return len(image) if isinstance(image, (list, tuple)) else 1


def _token_counts(chunk: list, processor, render) -> list[tuple[int, object, int, int, int]]:
    """(number, example, prompt tokens, of them its images', label + end-of-turn tokens) of each
    (number, example)."""
    tokenizer = processor.tokenizer
    images = [image_count(e) for _, e in chunk]  # every image of a run is in the frame: one size
    texts = [processor.prompt_text(e.prompt, n) for (_, e), n in zip(chunk, images)]
    prompts = tokenizer(texts, add_special_tokens=False)
    labels = tokenizer([render(e) for _, e in chunk], add_special_tokens=False)
    counts = []
    for (number, example), n, prompt, label in zip(chunk, images, prompts["input_ids"], labels["input_ids"]):
        # The prompt text holds the images' placeholders; the processor expands them (its own count).
        image = n * processor.tokens_added_by_image(example.width, example.height) if n else 0
        counts.append((number, example, len(prompt) + image, image, len(label) + 1))
    return counts


def _too_long(example, prompt: int, image: int, label: int, new_tokens: int, context: int) -> BadRowError:
    completion = max(label, new_tokens)
    return BadRowError(
        example.id,
        f"the prompt is {prompt} tokens ({image} of them for its {image_count(example)} "
        f"{example.width}x{example.height} image{'' if image_count(example) == 1 else 's'}) and "
        f"the completion up to {completion} ({label} for the label"
        + (f", {len(example.objects)} objects in the label" if example.objects else "")
        + f"; up to {new_tokens} generated): "
        f"{prompt + completion} tokens, more than the model's context of {context}",
    )


def drop_overlong(
    examples: list,
    processor,
    context: int | None,
    render: Callable[[object], str],
    on_bad_row: str = "error",
    log: logging.Logger | None = None,
    new_tokens: int = 0,
) -> list:
    """`examples` without those whose prompt + label (`render(example)`, closed by the end-of-turn
    token), or prompt + `new_tokens` (the most a completion may have), exceed `context` tokens.
    Each is a bad row: `on_bad_row="error"` raises BadRowError naming it and the counts, `"skip"`
    drops it; the count is logged. `examples` may be SplitRows (lazy rows: counted from their
    text, no image decoded; the result is SplitRows too)."""
    if not context or not len(examples):
        return examples
    lazy = hasattr(examples, "described")
    log = log or logging.getLogger(__name__)
    kept, dropped = [], 0
    chunk: list = []
    items = examples.described() if lazy else examples
    for number, example in enumerate(items):
        chunk.append((number, example))
        if len(chunk) == CHUNK or number == len(examples) - 1:
            for number_, example_, prompt, image, label in _token_counts(chunk, processor, render):
                if prompt + max(label, new_tokens) <= context:
                    kept.append(number_ if lazy else example_)
                    continue
                err = _too_long(example_, prompt, image, label, new_tokens, context)
                if on_bad_row != "skip":
                    raise err
                log.warning("skipping %s", err)
                dropped += 1
            chunk = []
    if dropped:
        log.warning("skipped %d of %d rows as too long for the model", dropped, len(examples))
    if not kept:
        raise DataError(f"all {len(examples)} rows are too long for the model's context of {context}")
    if lazy:
        rows = examples.subset(kept)
        rows.skipped_checks += dropped
        return rows
    return kept
