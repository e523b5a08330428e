"""A prompt passed through the decoder once, its KV cache then shared by every row that continues it.

The G rollouts of a prompt (and its label) all start with the same prompt and image. Sampling
and scoring run the prompt once per distinct prompt, copy its cache to the rows that continue
it, and run only the continuations over all rows. This needs the positions of the continuation
tokens, which the Qwen-VL families keep as `rope_deltas` (their multimodal rotary positions);
other families, and a policy sharded by FSDP (whose parameters are gathered only inside the
root's own forward), take the path that runs every row's prompt (`supports_shared_prompts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from visurf.training.distributed import is_sharded


def hf_model(model):
    """The transformers model under a peft wrapper (its adapters stay active), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_shared_prompts(model, prompt: dict | None = None) -> bool:
    """Whether `prompt_pass` can run this model (an unsharded Qwen-VL family model) on `prompt`.

    A batch without any image takes the other path: without image grids the Qwen-VL forward
    keeps no rope deltas, and places the tokens by column. So does a model training under
    gradient checkpointing: transformers then turns the KV cache off.
    """
    if is_sharded(model) or (prompt is not None and prompt.get("image_grid_thw") is None):
        return False
    base = hf_model(model)
    if base.training and getattr(base, "is_gradient_checkpointing", False):
        return False
    return hasattr(getattr(base, "model", None), "rope_deltas") and base.get_output_embeddings() is not None


@dataclass
class PromptPass:
    last_hidden: torch.Tensor  # [P, H] the decoder's output at each prompt's last position
    cache: object  # the KV cache of the P prompts (transformers' DynamicCache)
    next_position: torch.Tensor  # [P] the rotary position of the first token after each prompt


def prompt_pass(model, inputs: dict) -> PromptPass:
    """The decoder over a left-padded prompt batch (model inputs, e.g. with `mm_encoder_outputs`)."""
    decoder = hf_model(model).model
    out = decoder(**inputs, use_cache=True)
    mask = inputs["attention_mask"]
    # Qwen-VL: a text token's position is its index among the row's real tokens plus the row's
    # rope delta (set by this forward), on all three rotary axes.
    next_position = mask.sum(-1).long() + decoder.rope_deltas.view(-1).to(mask.device)
    return PromptPass(out.last_hidden_state[:, -1], out.cache, next_position)


def continuation_positions(next_position: torch.Tensor, start: int, width: int) -> torch.Tensor:
    """Rotary positions [3, N, width] of continuation tokens start .. start + width - 1."""
    steps = torch.arange(start, start + width, device=next_position.device)
    return (next_position[:, None] + steps[None, :]).unsqueeze(0).expand(3, -1, -1)


def continue_pass(model, ids: torch.Tensor, attention_mask: torch.Tensor, positions, cache) -> torch.Tensor:
    """The decoder's hidden states [N, width, H] of continuation tokens `ids` [N, width] after `cache`.

    `attention_mask` covers the cached prompt and the continuation ([N, cached + width]).
    """
    decoder = hf_model(model).model
    out = decoder(
        input_ids=ids, attention_mask=attention_mask, position_ids=positions, cache=cache, use_cache=True
    )
    return out.last_hidden_state
