"""Scoring: log π of every completion token of a `Sequences` batch, memory-bounded.

Each distinct image goes through the vision encoder once per call; the output head runs on a
chunk of completion positions at a time, so memory grows with rows x tokens, not with the
vocabulary as well.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import fields

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from visurf.rollout.prefix import supports_shared_prompts
from visurf.rollout.sequences import (
    Sequences,
    _image_keys,
    _row_keys,
    _token_keys,
    image_table,
    images_in_order,
    num_images,
    row_images,
)
from visurf.rollout.shared_prompts import shared_prompt_scorer
from visurf.training.distributed import is_sharded

# Completion positions per pass of the output head when scoring: the head's logits of one chunk
# (chunk × vocabulary, plus their float32 copy) are the only vocabulary-sized tensors alive.
# 512 positions of Qwen2.5-VL's 151,936 entries are about 0.3 GB in float32.
LOGIT_CHUNK = 512


def token_logps(
    model,
    seqs: Sequences,
    micro_batch_size: int = 0,
    *,
    chunk_size: int = LOGIT_CHUNK,
    temperature: float = 1.0,
) -> torch.Tensor:
    """log π_T(token_t | prompt, prefix) for every completion token, [N, C] float32.

    π_T is softmax(logits / `temperature`): a policy loss scores its rollouts at the temperature
    they were sampled at, so its gradient is that of the distribution that drew them (as TRL and
    verl do); 1 scores the model itself (SFT's labels).

    Each distinct image goes through the vision encoder once per call. On the Qwen-VL families
    each distinct prompt also goes through the decoder once per call, and only the completions
    run per row, in passes of rows of similar lengths (`visurf.rollout.shared_prompts`); other
    families and FSDP run every row's prompt. With `micro_batch_size` > 0, rows are scored part
    by part (see `Sequences.parts`) in micro-batches of that many rows; without, the shared path
    takes the whole batch at once and the padded path whole parts. Each pass is trimmed to its
    own longest prompt and completion; positions past a row's completion
    hold 0. The output head runs on `chunk_size` real completion positions at a time (see
    `_head_logps`), so memory grows with rows × tokens, not with the vocabulary as well.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 position, got {chunk_size}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    width = seqs.ids.shape[1]
    features = _image_features(model, seqs.prompt)
    shared = supports_shared_prompts(model, seqs.prompt)
    if shared:  # each distinct prompt runs once for all its rows
        score = shared_prompt_scorer(
            model, seqs, features, _join_encoded, chunk_size, temperature, _chunked_logps
        )
    else:

        def score(rows):
            return _token_logps(model, seqs, rows, features, chunk_size, temperature)

    out = []
    for rows in _row_groups(seqs, micro_batch_size, by_length=shared):
        logp = score(rows)
        out.append(F.pad(logp, (0, width - logp.shape[1])))
    return torch.cat(out)


def _row_groups(seqs: Sequences, micro_batch_size: int, by_length: bool) -> list[torch.Tensor]:
    """The rows of each forward pass, in order: part by part, `micro_batch_size` rows at a time
    (0: whole parts). A scorer that sorts its rows by length itself (`by_length`) takes the whole
    batch at once when there is no micro-batch size: the lengths keep long labels apart."""
    n = seqs.ids.shape[0]
    if by_length and micro_batch_size <= 0:
        return [torch.arange(n, device=seqs.ids.device)]
    groups, start = [], 0
    for size in seqs.parts or (n,):
        step = micro_batch_size if micro_batch_size > 0 else size
        for first in range(start, start + size, step):
            groups.append(torch.arange(first, min(start + size, first + step), device=seqs.ids.device))
        start += size
    return groups


def _image_features(model, prompt: dict) -> list | None:
    """The vision encoder's output for each distinct image (see `_split_encoded`), or None where
    the model must encode pixels itself.

    The images go through the model's own `get_image_features` once, with every per-image input
    it takes. Under FSDP the vision tower's parameters are only gathered inside the root's
    forward, so the sharded policy takes the pixels row by row instead.
    """
    if is_sharded(model) or not hasattr(model, "get_image_features"):
        return None
    if num_images(prompt) == 0:  # text-only rows
        return []
    accepted = inspect.signature(model.get_image_features).parameters
    kwargs = {k: prompt[k] for k in _image_keys(prompt) if k in accepted}
    out = model.get_image_features(**kwargs, return_dict=True)
    return _split_encoded(out, num_images(prompt))


def _split_encoded(out, n: int) -> list[dict]:
    """An encoder output of `n` images as one dict of fields per image.

    `pooler_output` (the image tokens' features) is per image: a list of [tokens_i, hidden], or a
    tensor [n, tokens, hidden]. List fields with one entry per decoder layer they feed (Qwen3-VL's
    `deepstack_features`) are split per image too: each entry either already per image (a list of
    n tensors) or every image's tokens in turn. The encoder's own hidden states and attentions are
    not passed back to the forward.
    """
    pooler = out.pooler_output
    per_image = [{"pooler_output": pooler[i]} for i in range(n)]
    sizes = [p["pooler_output"].shape[0] for p in per_image]
    layout = {"_class": type(out), "_stacked": isinstance(pooler, torch.Tensor)}
    for f in fields(out):
        value = getattr(out, f.name)
        if f.name == "pooler_output" or not isinstance(value, (list, tuple)) or layout["_stacked"]:
            continue
        if all(isinstance(v, (list, tuple)) and len(v) == n for v in value):
            chunks, layout[f.name] = [list(v) for v in value], "per_image"
        elif all(isinstance(v, torch.Tensor) and v.shape[0] == sum(sizes) for v in value):
            chunks, layout[f.name] = [torch.split(v, sizes) for v in value], "joined"
        else:
            continue
        for i, part in enumerate(per_image):
            part[f.name] = [layer[i] for layer in chunks]
    for part in per_image:
        part["_layout"] = layout
    return per_image


def _join_encoded(parts: list[dict]):
    """The encoder output of the images `parts` in this order, as the model's forward takes it."""
    layout = parts[0]["_layout"]
    pooler = [p["pooler_output"] for p in parts]
    out = {"pooler_output": torch.stack(pooler) if layout["_stacked"] else pooler}
    for name, kind in layout.items():
        if name.startswith("_"):
            continue
        layers = zip(*(p[name] for p in parts))  # per layer: that layer's chunk of each image
        out[name] = [list(chunks) if kind == "per_image" else torch.cat(chunks) for chunks in layers]
    return layout["_class"](**out)


def completion_token_type(model) -> int:
    """The token type of completion tokens (the family table's; 0 for families without one)."""
    from visurf.models.families import FAMILIES

    config = getattr(model, "config", None)
    family = FAMILIES.get(getattr(config, "model_type", None))
    return family.completion_token_type or 0 if family else 0


def _token_logps(
    model, seqs: Sequences, rows: torch.Tensor, features, chunk_size: int, temperature: float
) -> torch.Tensor:
    p = seqs.prompt
    keep = p["attention_mask"][rows].any(0)  # drop prompt columns that are padding in every row
    c = max(1, int(seqs.mask[rows].sum(-1).max().item()))
    ids, mask = seqs.ids[rows, :c], seqs.mask[rows, :c]
    completion = {
        "input_ids": ids,
        "attention_mask": mask.to(p["attention_mask"].dtype),
        "mm_token_type_ids": torch.zeros_like(ids),
        "token_type_ids": torch.full_like(ids, completion_token_type(model)),
    }
    inputs = {
        k: torch.cat([p[k][rows][:, keep], completion[k].to(p[k].dtype)], dim=1) for k in _token_keys(p)
    }
    inputs.update({k: p[k][rows] for k in _row_keys(p)})
    shown = images_in_order(image_table(p)[rows])  # the rows' images in their tokens' order
    if features is not None and shown:
        row_features = _join_encoded([features[i] for i in shown])
        inputs["mm_encoder_outputs"] = {"image": row_features}
        # Inputs the forward needs besides the features (Qwen's grids place the image tokens).
        inputs.update({k: v for k, v in row_images(p, rows).items() if k != "pixel_values"})
    elif features is None:
        inputs.update(row_images(p, rows))
    with _head_logps(model, ids, mask, chunk_size, temperature):
        out = model(**inputs, logits_to_keep=c + 1, use_cache=False)
    logp = out.logits  # the head's output: the scored tokens' log-probabilities, [rows, c]
    if logp.shape != ids.shape:
        raise RuntimeError(
            f"{type(model).__name__}'s forward did not score through get_output_embeddings() "
            f"(got logits of shape {tuple(logp.shape)}); token_logps needs the head it returns"
        )
    return logp


@contextmanager
def _head_logps(model, ids: torch.Tensor, mask: torch.Tensor, chunk_size: int, temperature: float):
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
            logp = _chunked_logps(module, hidden[real], ids[real], chunk_size, temperature)
        finally:
            inside[0] = False
        return torch.zeros(ids.shape, dtype=logp.dtype, device=logp.device).masked_scatter(real, logp)

    handles = [head.register_forward_pre_hook(pre), head.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _chunked_logps(
    head, hidden: torch.Tensor, ids: torch.Tensor, chunk_size: int, temperature: float
) -> torch.Tensor:
    """log_softmax(head(hidden) / temperature)[ids] per position, [P], `chunk_size` positions at a time.

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
            out.append(checkpoint(_logps_of, head, h, t, temperature, use_reentrant=False))
        else:
            # No name holds the chunk's logits here: a loop variable would keep them alive while
            # the next chunk's are made (two chunks at the peak).
            out.append(_logps_in_place(head(h).float(), t, temperature))
    if not out:  # no real completion token in these rows: empty, but still part of the graph
        return hidden[:, 0].float() * 0
    return torch.cat(out)


def _logps_of(head, hidden: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = head(hidden).float()  # one chunk's copy in float32, whatever the model's dtype
    return _TokenLogp.apply(logits if temperature == 1.0 else logits / temperature, ids)


def _logps_in_place(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """The same as `_TokenLogp` of logits / temperature without gradients, in the logits' own
    buffer (overwritten)."""
    if temperature != 1.0:
        logits.div_(temperature)
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
