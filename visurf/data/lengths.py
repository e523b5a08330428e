"""Examples too long for the model: the prompt (chat text, image tokens included) and the label
together must fit the model's context, or the label would be cut (transformers only warns)."""

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


def drop_overlong(
    examples: list,
    processor,
    context: int | None,
    render: Callable[[object], str],
    on_bad_row: str = "error",
    log: logging.Logger | None = None,
) -> list:
    """`examples` without those whose prompt + label (`render(example)`, closed by the end-of-turn
    token) exceed `context` tokens. Each is a bad row: `on_bad_row="error"` raises BadRowError
    naming it, `"skip"` drops it; the count is logged. `examples` may be SplitRows (lazy rows:
    counted from their text, no image decoded; the result is SplitRows too)."""
    if not context or not len(examples):
        return examples
    lazy = hasattr(examples, "described")
    items = list(examples.described()) if lazy else examples
    log = log or logging.getLogger(__name__)
    tokenizer = processor.tokenizer
    prompts = tokenizer([processor.prompt_text(e.prompt) for e in items], add_special_tokens=False)
    labels = tokenizer([render(e) for e in items], add_special_tokens=False)
    kept, dropped = [], 0
    for number, (example, prompt, label) in enumerate(zip(items, prompts["input_ids"], labels["input_ids"])):
        # The prompt text holds the image's placeholder; the processor expands it (its own count).
        total = len(prompt) + processor.tokens_added_by_image(example.width, example.height) + len(label) + 1
        if total <= context:
            kept.append(number if lazy else example)
            continue
        err = BadRowError(
            example.id,
            f"prompt and label are {total} tokens ({len(example.objects)} objects in the label), "
            f"more than the model's context of {context}",
        )
        if on_bad_row != "skip":
            raise err
        log.warning("skipping %s", err)
        dropped += 1
    if dropped:
        log.warning("skipped %d of %d rows as too long for the model", dropped, len(examples))
    if not kept:
        raise DataError(f"all {len(examples)} rows are too long for the model's context of {context}")
    if lazy:
        rows = examples.subset(kept)
        rows.skipped_checks += dropped
        return rows
    return kept
