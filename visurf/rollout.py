"""Sequences of prompt + completion tokens: sampling them, padding them, scoring their tokens.

A row of a `Sequences` batch is one completion of one prompt. The prompt's token ids are
repeated per row; its image is not: `prompt["pixel_values"]` holds each distinct image once and
`prompt["image_index"]` says which one a row shows (absent: row i shows image i, as the
processor returns them). Scoring encodes each image once for all the rows that share it (the
G rollouts and the label of a prompt). Completions are right-padded; `mask` marks their real
tokens (up to and including the end-of-turn token).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutputWithPooling

from visurf.strategies import is_sharded


@dataclass
class Sequences:
    # input_ids, attention_mask, mm_token_type_ids, image_grid_thw per row; pixel_values per image
    prompt: dict
    ids: torch.Tensor  # [N, C] completion token ids
    mask: torch.Tensor  # [N, C] float, 1 on real completion tokens
    truncated: torch.Tensor  # [N] bool, no end-of-turn token within the budget
    # Row counts of the batches stacked by `concat` (e.g. rollouts, then labels): each is scored
    # at its own width, so long labels do not widen the rollouts' forward pass.
    parts: tuple[int, ...] | None = None

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)


_ROW_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "image_grid_thw")


def image_index(prompt: dict) -> torch.Tensor:
    """The image of each row, an index into the prompt's distinct images."""
    index = prompt.get("image_index")
    if index is None:
        index = torch.arange(prompt["input_ids"].shape[0], device=prompt["input_ids"].device)
    return index


def image_grids(prompt: dict) -> torch.Tensor:
    """image_grid_thw of each distinct image, [num_images, 3]."""
    index = image_index(prompt)
    grid = prompt["image_grid_thw"]
    grids = torch.zeros(int(index.max()) + 1, 3, dtype=grid.dtype, device=grid.device)
    grids[index] = grid
    return grids


def images(prompt: dict) -> list[torch.Tensor]:
    """The pixel patches of each distinct image."""
    return list(torch.split(prompt["pixel_values"], image_grids(prompt).prod(-1).tolist()))


def row_pixels(prompt: dict, rows) -> torch.Tensor:
    """pixel_values for `rows`, each row with its own copy of its image (as a model's forward takes them)."""
    chunks = images(prompt)
    return torch.cat([chunks[i] for i in image_index(prompt)[rows].tolist()])


def model_inputs(prompt: dict) -> dict:
    """The prompt batch as a model's forward / generate takes it: every row with its own pixels."""
    out = {k: prompt[k] for k in _ROW_KEYS}
    if prompt.get("image_index") is None:
        out["pixel_values"] = prompt["pixel_values"]
    else:
        out["pixel_values"] = row_pixels(prompt, list(range(prompt["input_ids"].shape[0])))
    return out


def select_prompts(inputs: dict, index: torch.Tensor) -> dict:
    """Rows `index` of a prompt batch (rows may repeat); each image used is kept once."""
    used, new_index = torch.unique(image_index(inputs)[index], return_inverse=True)
    out = {k: inputs[k][index] for k in _ROW_KEYS}
    chunks = images(inputs)
    if used.numel() == len(chunks):
        out["pixel_values"] = inputs["pixel_values"]  # every image still used: share the tensor
    else:
        out["pixel_values"] = torch.cat([chunks[i] for i in used.tolist()])
    out["image_index"] = new_index
    return out


def pad_completions(rows: list[list[int]], pad_id: int, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists; the mask covers each row up to its first end-of-turn token."""
    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    return ids, mask


def completion_mask(ids: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask up to and including the first end-of-turn token; rows without one are truncated."""
    is_eos = ids == eos_id
    has_eos = is_eos.any(-1)
    first = torch.where(
        has_eos, is_eos.float().argmax(-1), torch.full_like(has_eos, ids.shape[1], dtype=torch.long)
    )
    positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
    mask = (positions <= first[:, None]).float()
    return mask, ~has_eos


@torch.no_grad()
def sample(
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
    synced_gpus: bool | None = None,
) -> Sequences:
    """`num_samples` completions per prompt with transformers' `generate` (KV cache on).

    Rows come out grouped by prompt: prompt 0's samples first, then prompt 1's, ...
    """
    was_training = model.training
    model.eval()
    try:
        out = model.generate(
            **model_inputs(inputs),
            do_sample=not greedy,
            temperature=temperature if not greedy else None,
            top_p=top_p if not greedy else None,
            # Every knob that shapes the distribution is set here, so a checkpoint's own
            # generation_config (Qwen-Instruct ships repetition_penalty 1.05, top_k 1) cannot
            # change it: rollouts must be samples of the policy the loss scores.
            top_k=None,
            min_p=None,
            typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=num_samples,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            use_cache=True,
            # An image placeholder token in a completion would break the next forward pass
            # (image tokens must match image features), so vision tokens are never sampled.
            suppress_tokens=suppress_ids or None,
            synced_gpus=synced_gpus,  # True under FSDP: see visurf.strategies.generation_context
        )
    finally:
        model.train(was_training)
    ids = out[:, inputs["input_ids"].shape[1] :]
    if ids.shape[1] == 0:
        ids = torch.full((ids.shape[0], 1), pad_id, dtype=torch.long, device=ids.device)
    mask, truncated = completion_mask(ids, eos_id)
    ids = ids.masked_fill(mask == 0, pad_id)
    index = torch.arange(inputs["input_ids"].shape[0], device=ids.device).repeat_interleave(num_samples)
    return Sequences(select_prompts(inputs, index), ids, mask, truncated)


def concat(a: Sequences, b: Sequences, pad_id: int) -> Sequences:
    """Stack two batches of sequences (completions padded to a common width)."""
    width = max(a.ids.shape[1], b.ids.shape[1])

    def widen(s: Sequences) -> Sequences:
        extra = width - s.ids.shape[1]
        return replace(s, ids=F.pad(s.ids, (0, extra), value=pad_id), mask=F.pad(s.mask, (0, extra)))

    a, b = widen(a), widen(b)
    p_width = max(a.prompt["input_ids"].shape[1], b.prompt["input_ids"].shape[1])

    def left_pad(p: dict) -> dict:
        extra = p_width - p["input_ids"].shape[1]
        q = {k: p[k] for k in _ROW_KEYS}
        q["input_ids"] = F.pad(p["input_ids"], (extra, 0), value=pad_id)
        q["attention_mask"] = F.pad(p["attention_mask"], (extra, 0))
        q["mm_token_type_ids"] = F.pad(p["mm_token_type_ids"], (extra, 0))
        return q

    pa, pb = left_pad(a.prompt), left_pad(b.prompt)
    prompt = {k: torch.cat([pa[k], pb[k]]) for k in _ROW_KEYS}
    index_a, index_b = image_index(a.prompt), image_index(b.prompt)
    if a.prompt["pixel_values"] is b.prompt["pixel_values"]:  # rollouts and labels of one batch
        prompt["pixel_values"] = a.prompt["pixel_values"]
    else:
        prompt["pixel_values"] = torch.cat([a.prompt["pixel_values"], b.prompt["pixel_values"]])
        index_b = index_b + image_grids(a.prompt).shape[0]
    prompt["image_index"] = torch.cat([index_a, index_b])
    parts = (a.parts or (a.ids.shape[0],)) + (b.parts or (b.ids.shape[0],))
    return Sequences(
        prompt,
        torch.cat([a.ids, b.ids]),
        torch.cat([a.mask, b.mask]),
        torch.cat([a.truncated, b.truncated]),
        parts,
    )


def token_logps(model, seqs: Sequences, micro_batch_size: int = 0) -> torch.Tensor:
    """log π(token_t | prompt, prefix) for every completion token, [N, C] (temperature 1).

    Each distinct image goes through the vision encoder once per call. Rows are scored part by
    part (see `Sequences.parts`) and in micro-batches of `micro_batch_size` rows (0: whole parts),
    each trimmed to its own longest prompt and completion; positions past a row's completion
    hold 0.
    """
    n, width = seqs.ids.shape
    features = _image_features(model, seqs.prompt)
    out = []
    start = 0
    for size in seqs.parts or (n,):
        step = micro_batch_size if micro_batch_size > 0 else size
        for first in range(start, start + size, step):
            rows = torch.arange(first, min(start + size, first + step), device=seqs.ids.device)
            logp = _token_logps(model, seqs, rows, features)
            out.append(F.pad(logp, (0, width - logp.shape[1])))
        start += size
    return torch.cat(out)


def _image_features(model, prompt: dict) -> list[torch.Tensor] | None:
    """Vision-encoder output per distinct image, or None where the model must encode pixels itself.

    Under FSDP the vision tower's parameters are only gathered inside the root's forward, so the
    sharded policy takes the pixels row by row as before.
    """
    if is_sharded(model) or not hasattr(model, "get_image_features"):
        return None
    out = model.get_image_features(prompt["pixel_values"], image_grids(prompt), return_dict=True)
    return list(out.pooler_output)


def _token_logps(model, seqs: Sequences, rows: torch.Tensor, features) -> torch.Tensor:
    p = seqs.prompt
    keep = p["attention_mask"][rows].any(0)  # drop prompt columns that are padding in every row
    c = max(1, int(seqs.mask[rows].sum(-1).max().item()))
    ids, mask = seqs.ids[rows, :c], seqs.mask[rows, :c]
    prompt_ids = p["input_ids"][rows][:, keep]
    attention = torch.cat([p["attention_mask"][rows][:, keep], mask.to(p["attention_mask"].dtype)], dim=1)
    mm_types = torch.cat([p["mm_token_type_ids"][rows][:, keep], torch.zeros_like(ids)], dim=1)
    if features is not None:
        row_features = [features[i] for i in image_index(p)[rows].tolist()]
        vision = {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=row_features)}}
    else:
        vision = {"pixel_values": row_pixels(p, rows)}
    out = model(
        input_ids=torch.cat([prompt_ids, ids], dim=1),
        attention_mask=attention,
        image_grid_thw=p["image_grid_thw"][rows],
        mm_token_type_ids=mm_types,
        logits_to_keep=c + 1,
        use_cache=False,
        **vision,
    )
    logits = out.logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(mask == 0, 0.0)
