"""Sampling G completions per prompt with one prefill per prompt and a shrinking decode batch.

transformers' `generate(num_return_sequences=G)` copies each prompt G times and runs the copies'
prompt and image through the model, then decodes every row until the last one ends. Here each
prompt is prefilled once and its KV cache copied to its G rows (`visurf.rollout.prefix`), and a
row that has ended leaves the decode batch. The samples are generate's own for the same seed:
the next-token distribution is built as generate builds it (suppressed tokens, temperature,
top-p, in that order), and each step draws from the whole [rows, vocabulary] batch, ended rows
included, as generate does, so the random stream is consumed the same way.
"""

from __future__ import annotations

import torch

from visurf.rollout.prefix import continuation_positions, continue_pass, hf_model, prompt_pass


@torch.no_grad()
def sample_shared(
    model,
    inputs: dict,
    num_samples: int,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    eos_id: int,
    pad_id: int,
    greedy: bool = False,
    suppress_ids: list[int] | None = None,
) -> torch.Tensor:
    """Completion ids [B * G, steps] (rows grouped by prompt; pad after a row's end-of-turn token).

    `inputs` are model inputs (every row with its own image, as `generate` takes them).
    """
    head = hf_model(model).get_output_embeddings()
    prefill = prompt_pass(model, inputs)
    rows = torch.arange(inputs["input_ids"].shape[0], device=prefill.last_hidden.device)
    rows = rows.repeat_interleave(num_samples)
    prefill.cache.batch_repeat_interleave(num_samples)
    mask = inputs["attention_mask"][rows]
    next_position = prefill.next_position[rows]
    logits = head(prefill.last_hidden).float()[rows]
    out = torch.full((rows.shape[0], max_new_tokens), pad_id, dtype=torch.long, device=rows.device)
    alive = torch.arange(rows.shape[0], device=rows.device)  # rows still decoding
    for step in range(max_new_tokens):
        tokens = next_tokens(logits, alive, rows.shape[0], temperature, top_p, greedy, suppress_ids, pad_id)
        out[alive, step] = tokens
        going = tokens != eos_id
        if step + 1 == max_new_tokens or not going.any():
            return out[:, : step + 1]
        if not going.all():  # ended rows leave the decode batch, and their cache with them
            alive, tokens, mask = alive[going], tokens[going], mask[going]
            prefill.cache.batch_select_indices(going.nonzero().squeeze(-1))
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        positions = continuation_positions(next_position[alive], step, 1)
        hidden = continue_pass(model, tokens[:, None], mask, positions, prefill.cache)
        logits = head(hidden[:, -1]).float()
    return out[:, :0]


def next_tokens(
    logits: torch.Tensor,
    alive: torch.Tensor,
    total: int,
    temperature: float,
    top_p: float,
    greedy: bool,
    suppress_ids: list[int] | None,
    pad_id: int,
) -> torch.Tensor:
    """The next token of each row in `alive` from its float32 logits [A, V].

    Sampling draws for all `total` rows (ended rows draw from a point mass on the pad token and
    are dropped), so that torch's generator advances exactly as in generate's batch.
    """
    scores = logits
    if suppress_ids:
        scores = scores.index_fill(-1, torch.tensor(suppress_ids, device=scores.device), -float("inf"))
    if greedy:
        return scores.argmax(-1)
    if temperature != 1.0:
        scores = scores / temperature
    if top_p < 1.0:
        scores = top_p_filter(scores, top_p)
    probs = torch.zeros(total, scores.shape[-1], dtype=scores.dtype, device=scores.device)
    probs[:, pad_id] = 1.0
    probs[alive] = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)[alive]


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Scores outside the smallest set of tokens whose probability reaches `top_p` become -inf
    (at least one token kept), as transformers' TopPLogitsWarper does."""
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))
