"""Sequences of prompt + completion tokens: sampling them, padding them, scoring their tokens.

A row of a `Sequences` batch is one completion of one prompt. The prompt's token ids are
repeated per row; its image is not: `prompt["pixel_values"]` holds each distinct image once and
`prompt["image_index"]` says which one a row shows (absent: row i shows image i, as the
processor returns them). Scoring encodes each image once for all the rows that share it (the
G rollouts and the label of a prompt). Completions are right-padded; `mask` marks their real
tokens (up to and including the end-of-turn token).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
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


# Completion positions per pass of the output head when scoring: the head's logits of one chunk
# (chunk × vocabulary, plus their float32 copy) are the only vocabulary-sized tensors alive.
# 512 positions of Qwen2.5-VL's 151,936 entries are about 0.3 GB in float32.
LOGIT_CHUNK = 512


def token_logps(
    model, seqs: Sequences, micro_batch_size: int = 0, *, chunk_size: int = LOGIT_CHUNK
) -> torch.Tensor:
    """log π(token_t | prompt, prefix) for every completion token, [N, C] float32 (temperature 1).

    Each distinct image goes through the vision encoder once per call. Rows are scored part by
    part (see `Sequences.parts`) and in micro-batches of `micro_batch_size` rows (0: whole parts),
    each trimmed to its own longest prompt and completion; positions past a row's completion
    hold 0. The output head runs on `chunk_size` real completion positions at a time (see
    `_head_logps`), so memory grows with rows × tokens, not with the vocabulary as well.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 position, got {chunk_size}")
    n, width = seqs.ids.shape
    features = _image_features(model, seqs.prompt)
    out = []
    start = 0
    for size in seqs.parts or (n,):
        step = micro_batch_size if micro_batch_size > 0 else size
        for first in range(start, start + size, step):
            rows = torch.arange(first, min(start + size, first + step), device=seqs.ids.device)
            logp = _token_logps(model, seqs, rows, features, chunk_size)
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


def _token_logps(model, seqs: Sequences, rows: torch.Tensor, features, chunk_size: int) -> torch.Tensor:
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
    with _head_logps(model, ids, mask, chunk_size):
        out = model(
            input_ids=torch.cat([prompt_ids, ids], dim=1),
            attention_mask=attention,
            image_grid_thw=p["image_grid_thw"][rows],
            mm_token_type_ids=mm_types,
            logits_to_keep=c + 1,
            use_cache=False,
            **vision,
        )
    return out.logits  # the head's output is the scored tokens' log-probabilities, [rows, c]


@contextmanager
def _head_logps(model, ids: torch.Tensor, mask: torch.Tensor, chunk_size: int):
    """While open, the model's output head returns log π of `ids` ([rows, c]) instead of logits.

    Hooks on the head itself rather than a call to the decoder and head by hand: the model's own
    forward still runs (so pixels or reused image features, peft wrappers and FSDP's gathering of
    the root's parameters all work as they do for logits), and under FSDP the log-probabilities
    are the forward's output, which its backward hooks need. The head sees the c + 1 kept hidden
    states (`logits_to_keep`); the pre-hook hands it only the last one (logits of one position),
    and the hook replaces that output with `_chunked_logps` of the real completion positions.
    """
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output head (get_output_embeddings() is None)")
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(text_config, "final_logit_softcapping", None):
        # The forward would soft-cap what the head returns (Gemma's final_logit_softcapping).
        raise ValueError(
            f"{type(model).__name__} soft-caps its logits (final_logit_softcapping): visurf's "
            "token scoring takes the output head's logits as they are and cannot score it"
        )
    kept: dict = {}
    inside = [False]  # calls of the head made by _chunked_logps itself pass through

    def pre(module, args):
        if inside[0]:
            return None
        kept["hidden"] = args[0]
        return (args[0][:, -1:], *args[1:])

    def post(module, args, output):
        if inside[0]:
            return None
        hidden = kept.pop("hidden")[:, :-1]  # position t predicts completion token t
        real = mask > 0
        inside[0] = True
        try:
            logp = _chunked_logps(module, hidden[real], ids[real], chunk_size)
        finally:
            inside[0] = False
        return torch.zeros(ids.shape, dtype=logp.dtype, device=logp.device).masked_scatter(real, logp)

    handles = [head.register_forward_pre_hook(pre), head.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _chunked_logps(head, hidden: torch.Tensor, ids: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """log_softmax(head(hidden))[ids] per position, [P], `chunk_size` positions at a time.

    With gradients, each chunk is checkpointed: its logits are recomputed in the backward pass
    instead of being kept, so no more than one chunk's logits exist at a time there either.
    """
    grad = torch.is_grad_enabled() and (
        hidden.requires_grad or any(p.requires_grad for p in head.parameters())
    )
    out = []
    for start in range(0, hidden.shape[0], chunk_size):
        h, t = hidden[start : start + chunk_size], ids[start : start + chunk_size]
        if grad:
            out.append(checkpoint(_logps_of, head, h, t, use_reentrant=False))
        else:
            out.append(_logps_in_place(head(h).float(), t))
    if not out:  # no real completion token in these rows: empty, but still part of the graph
        return hidden[:, 0].float() * 0
    return torch.cat(out)


def _logps_of(head, hidden: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()  # one chunk's copy in float32, whatever the model's dtype
    return _TokenLogp.apply(logits, ids)


def _logps_in_place(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The same as `_TokenLogp` without gradients, in the logits' own buffer (overwritten)."""
    picked = logits.gather(-1, ids[:, None])[:, 0]
    top = logits.amax(dim=-1)
    total = logits.sub_(top[:, None]).exp_().sum(-1)
    return picked - top - total.log()


class _TokenLogp(torch.autograd.Function):
    """logits[p, ids[p]] − logsumexp(logits[p]), [P], from float32 logits [P, V].

    Autograd of the same expression keeps the logits plus three vocabulary-sized temporaries
    alive in the backward pass; here it is the logits and one buffer, turned into the gradient
    (g · (onehot − softmax)) in place.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        lse = torch.logsumexp(logits, dim=-1)
        ctx.save_for_backward(logits, ids, lse)
        return logits.gather(-1, ids[:, None])[:, 0] - lse

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, ids, lse = ctx.saved_tensors
        out = (logits - lse[:, None]).exp_().mul_(-grad[:, None])
        return out.scatter_add_(-1, ids[:, None], grad[:, None]), None
