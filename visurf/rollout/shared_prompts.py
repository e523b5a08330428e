"""Scoring rows that share prompts with each distinct prompt run once.

The G rollouts of a prompt and its label share the prompt and image: the decoder runs over each
distinct prompt once (with gradients), its KV cache is copied to the rows that continue it, and
only the completions run over every row. The values and gradients are those of the padded
batch that runs every row's prompt (`tests/integration/test_shared_prompts.py`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from visurf.rollout.prefix import continuation_positions, continue_pass, hf_model, prompt_pass
from visurf.rollout.sequences import (
    Sequences,
    _row_keys,
    _token_keys,
    image_table,
    images_in_order,
    row_images,
)

# Rows sorted by completion length go in passes of at least BUCKET_ROWS rows (at most
# LENGTH_BUCKETS passes): the padding to each pass's longest completion, not the batch's, is
# what gets computed, and a pass is large enough to be worth its fixed cost.
LENGTH_BUCKETS = 4
BUCKET_ROWS = 16


def distinct_prompts(prompt: dict, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(one row of each distinct prompt among `rows` [U], the index of each row's prompt in it [R]).

    Rows share a prompt when they show the same images with the same prompt tokens.
    """
    key = torch.cat([image_table(prompt)[rows], prompt["input_ids"][rows]], dim=1)
    unique, inverse = torch.unique(key, dim=0, return_inverse=True)
    first = torch.full((unique.shape[0],), rows.shape[0], dtype=torch.long, device=rows.device)
    first = first.scatter_reduce(0, inverse, torch.arange(rows.shape[0], device=rows.device), "amin")
    return rows[first], inverse


def prompt_inputs(prompt: dict, rows: torch.Tensor, features, join) -> dict:
    """Model inputs of prompt rows `rows`, columns that are padding in all of them dropped."""
    keep = prompt["attention_mask"][rows].any(0)
    inputs = {k: prompt[k][rows][:, keep] for k in _token_keys(prompt)}
    inputs.update({k: prompt[k][rows] for k in _row_keys(prompt)})
    images = row_images(prompt, rows)
    shown = images_in_order(image_table(prompt)[rows])  # the rows' images in their tokens' order
    if features is not None and shown:
        inputs["mm_encoder_outputs"] = {"image": join([features[i] for i in shown])}
        images.pop("pixel_values", None)  # the grids still place the image tokens
    inputs.update(images)
    return inputs


def rows_of(cache, index: torch.Tensor):
    """A copy of a KV cache holding its rows `index` (repeats allowed); the cache itself is kept."""
    out = copy.copy(cache)
    out.layers = [copy.copy(layer) for layer in cache.layers]
    out.batch_select_indices(index)
    return out


def shared_prompt_scorer(model, seqs: Sequences, features, join, chunk_size, temperature, logps_of):
    """A function of rows -> log π_T of each of their completion tokens, [R, c] (c: their longest
    completion, 0 past a row's end), scoring each distinct prompt of `seqs` once in all.

    The prompts run once, with gradients when enabled, the first time it is called; every later
    call (a part, a micro-batch) continues from their cache. `logps_of(head, hidden [P, H],
    ids [P], chunk_size, temperature)` scores the real positions.
    """
    everything = torch.arange(seqs.ids.shape[0], device=seqs.ids.device)
    firsts, inverse = distinct_prompts(seqs.prompt, everything)
    inputs = prompt_inputs(seqs.prompt, firsts, features, join)
    head = hf_model(model).get_output_embeddings()
    prefill = []

    def score_rows(rows: torch.Tensor) -> torch.Tensor:
        if not prefill:
            prefill.append(prompt_pass(model, inputs))
        c = max(1, int(seqs.mask[rows].sum(-1).max().item()))
        ids, real = seqs.ids[rows, :c], seqs.mask[rows, :c] > 0
        hidden = completion_hidden(model, prefill[0], inputs["attention_mask"], inverse[rows], ids, real)
        logp = logps_of(head, hidden[real], ids[real], chunk_size, temperature)
        return torch.zeros(ids.shape, dtype=logp.dtype, device=logp.device).masked_scatter(real, logp)

    def score(rows: torch.Tensor) -> torch.Tensor:
        # Passes of similar lengths, each as wide as its own longest completion: one long (e.g.
        # truncated) row, or a long label, no longer widens every row's pass.
        lengths = seqs.mask[rows].sum(-1)
        order = lengths.argsort(descending=True)
        width = max(1, int(lengths.max().item()))
        passes = max(1, min(LENGTH_BUCKETS, rows.shape[0] // BUCKET_ROWS))
        parts = [score_rows(rows[b]) for b in order.tensor_split(passes)]
        parts = [F.pad(p, (0, width - p.shape[1])) for p in parts]
        return torch.cat(parts)[order.argsort()]

    return score


def completion_hidden(model, prefill, prompt_mask, prompt_of, ids, real) -> torch.Tensor:
    """The decoder's states [R, c, H] that predict completion tokens `ids` [R, c] of rows whose
    prompts are `prompt_of` [R] (indices into the prompt pass `prefill`).

    State t is the output at the position before completion token t: the prompt's last position
    for t = 0, completion token t - 1 after it.
    """
    before = [prefill.last_hidden[prompt_of, None]]
    width = ids.shape[1]
    if width > 1:
        attention = torch.cat([prompt_mask[prompt_of], real[:, : width - 1].to(prompt_mask.dtype)], 1)
        positions = continuation_positions(prefill.next_position[prompt_of], 0, width - 1)
        cache = rows_of(prefill.cache, prompt_of)
        before.append(continue_pass(model, ids[:, : width - 1], attention, positions, cache))
    return torch.cat(before, dim=1)
