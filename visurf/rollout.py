"""Sequences of prompt + completion tokens: sampling them, padding them, scoring their tokens.

A row of a `Sequences` batch is one completion of one prompt; the prompt's inputs (token ids
and image) are repeated per row. Completions are right-padded; `mask` marks their real tokens
(up to and including the end-of-turn token).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass
class Sequences:
    prompt: dict  # input_ids, attention_mask, mm_token_type_ids [N, P]; pixel_values; image_grid_thw [N, 3]
    ids: torch.Tensor  # [N, C] completion token ids
    mask: torch.Tensor  # [N, C] float, 1 on real completion tokens
    truncated: torch.Tensor  # [N] bool, no end-of-turn token within the budget

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(-1)


def select_prompts(inputs: dict, index: torch.Tensor) -> dict:
    """Rows `index` of a prompt batch (rows may repeat), images included."""
    grid = inputs["image_grid_thw"]
    sizes = grid.prod(-1).tolist()
    images = torch.split(inputs["pixel_values"], sizes)
    out = {k: inputs[k][index] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    out["pixel_values"] = torch.cat([images[i] for i in index.tolist()])
    out["image_grid_thw"] = grid[index]
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
            **inputs,
            do_sample=not greedy,
            temperature=temperature if not greedy else None,
            top_p=top_p if not greedy else None,
            top_k=None if not greedy else None,
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
        q = dict(p)
        q["input_ids"] = F.pad(p["input_ids"], (extra, 0), value=pad_id)
        q["attention_mask"] = F.pad(p["attention_mask"], (extra, 0))
        q["mm_token_type_ids"] = F.pad(p["mm_token_type_ids"], (extra, 0))
        return q

    pa, pb = left_pad(a.prompt), left_pad(b.prompt)
    prompt = {k: torch.cat([pa[k], pb[k]]) for k in pa}
    return Sequences(
        prompt, torch.cat([a.ids, b.ids]), torch.cat([a.mask, b.mask]), torch.cat([a.truncated, b.truncated])
    )


def reorder(s: Sequences, index: torch.Tensor) -> Sequences:
    return Sequences(select_prompts(s.prompt, index), s.ids[index], s.mask[index], s.truncated[index])


def token_logps(model, seqs: Sequences, micro_batch_size: int = 0) -> torch.Tensor:
    """log π(token_t | prompt, prefix) for every completion token, [N, C] (temperature 1)."""
    n = seqs.ids.shape[0]
    step = micro_batch_size if micro_batch_size > 0 else n
    parts = []
    for start in range(0, n, step):
        index = torch.arange(start, min(n, start + step), device=seqs.ids.device)
        parts.append(_token_logps(model, reorder(seqs, index) if step < n else seqs))
    return torch.cat(parts)


def _token_logps(model, seqs: Sequences) -> torch.Tensor:
    p = seqs.prompt
    c = seqs.ids.shape[1]
    input_ids = torch.cat([p["input_ids"], seqs.ids], dim=1)
    attention = torch.cat([p["attention_mask"], seqs.mask.to(p["attention_mask"].dtype)], dim=1)
    mm_types = torch.cat([p["mm_token_type_ids"], torch.zeros_like(seqs.ids)], dim=1)
    out = model(
        input_ids=input_ids,
        attention_mask=attention,
        pixel_values=p["pixel_values"],
        image_grid_thw=p["image_grid_thw"],
        mm_token_type_ids=mm_types,
        logits_to_keep=c + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, seqs.ids.unsqueeze(-1)).squeeze(-1)
