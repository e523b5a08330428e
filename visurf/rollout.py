"""Sequences of prompt + completion tokens: sampling them, padding them, scoring their tokens.

A row of a `Sequences` batch is one completion of one prompt. Model inputs are handled by kind,
whatever the family calls them:
- token-aligned keys (`TOKEN_KEYS`: input ids, attention mask, token types) hold one value per
  prompt token; they are left-padded together and extended with the completion when scoring;
- per-image keys (`IMAGE_KEYS`: pixels, Qwen's grids, SmolVLM's pixel masks, LLaVA's sizes) hold
  each distinct image once: `prompt["image_index"]` says which image a row shows (absent: row i
  shows image i, as the processor returns them). Scoring encodes each image once for all the rows
  that share it (the G rollouts and the label of a prompt);
- any other tensor is per row, and is selected and stacked with its rows.
Completions are right-padded; `mask` marks their real tokens (up to and including the
end-of-turn token).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from visurf.strategies import is_sharded


@dataclass
class Sequences:
    # token-aligned and per-row keys per row, per-image keys per distinct image (module docstring)
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


# Token-aligned keys and the value that pads them on the left (input_ids: the pad token).
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
# Per-image keys. With `image_grid_thw` (Qwen-VL), an image's pixel_values are prod(grid) patch
# rows; otherwise every per-image key has one entry per image along its first dimension.
IMAGE_KEYS = ("pixel_values", "image_grid_thw", "pixel_attention_mask", "image_sizes")


def _token_keys(prompt: dict) -> list[str]:
    return [k for k in TOKEN_KEYS if prompt.get(k) is not None]


def _image_keys(prompt: dict) -> list[str]:
    return [k for k in IMAGE_KEYS if prompt.get(k) is not None]


def _row_keys(prompt: dict) -> list[str]:
    return [
        k
        for k, v in prompt.items()
        if isinstance(v, torch.Tensor) and k not in TOKEN_KEYS and k not in IMAGE_KEYS and k != "image_index"
    ]


def num_images(prompt: dict) -> int:
    if prompt.get("image_grid_thw") is not None:
        return prompt["image_grid_thw"].shape[0]
    n, rows = prompt["pixel_values"].shape[0], prompt["input_ids"].shape[0]
    if prompt.get("image_index") is None and n != rows:
        # Without a grid, an image is one entry of pixel_values; tiles as separate entries
        # (InternVL's crop_to_patches) would be split wrongly.
        raise ValueError(
            f"pixel_values holds {n} entries for {rows} prompts of one image each: images split into "
            "tiles along the first dimension are not supported (InternVL: crop_to_patches=false)"
        )
    return n


def image_index(prompt: dict) -> torch.Tensor:
    """The image of each row, an index into the prompt's distinct images."""
    index = prompt.get("image_index")
    if index is None:
        index = torch.arange(prompt["input_ids"].shape[0], device=prompt["input_ids"].device)
    return index


def image_parts(prompt: dict) -> list[dict]:
    """The per-image inputs of each distinct image, one dict per image."""
    n = num_images(prompt)
    grid = prompt.get("image_grid_thw")
    parts = [{} for _ in range(n)]
    for key in _image_keys(prompt):
        sizes = grid.prod(-1).tolist() if key == "pixel_values" and grid is not None else [1] * n
        for part, chunk in zip(parts, torch.split(prompt[key], sizes)):
            part[key] = chunk
    return parts


def join_images(parts: list[dict]) -> dict:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]} if parts else {}


def row_images(prompt: dict, rows) -> dict:
    """The per-image inputs for `rows`, each row with its own copy of its image (as a model's
    forward and generate take them)."""
    index = image_index(prompt)[rows].tolist()
    if prompt.get("image_index") is None and index == list(range(num_images(prompt))):
        return {k: prompt[k] for k in _image_keys(prompt)}
    parts = image_parts(prompt)
    return join_images([parts[i] for i in index])


def model_inputs(prompt: dict) -> dict:
    """The prompt batch as a model's forward / generate takes it: every row with its own image."""
    rows = list(range(prompt["input_ids"].shape[0]))
    out = {k: prompt[k] for k in _token_keys(prompt) + _row_keys(prompt)}
    return {**out, **row_images(prompt, rows)}


def select_prompts(inputs: dict, index: torch.Tensor) -> dict:
    """Rows `index` of a prompt batch (rows may repeat); each image used is kept once."""
    used, new_index = torch.unique(image_index(inputs)[index], return_inverse=True)
    out = {k: inputs[k][index] for k in _token_keys(inputs) + _row_keys(inputs)}
    if used.numel() == num_images(inputs):  # every image still used: share the tensors
        out.update({k: inputs[k] for k in _image_keys(inputs)})
    else:
        parts = image_parts(inputs)
        out.update(join_images([parts[i] for i in used.tolist()]))
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
        return {k: F.pad(p[k], (extra, 0), value=pad_id if k == "input_ids" else 0) for k in _token_keys(p)}

    prompt = {
        k: torch.cat([pa, pb]) for (k, pa), pb in zip(left_pad(a.prompt).items(), left_pad(b.prompt).values())
    }
    for k in _row_keys(a.prompt):
        prompt[k] = torch.cat([a.prompt[k], b.prompt[k]])
    index_a, index_b = image_index(a.prompt), image_index(b.prompt)
    if a.prompt["pixel_values"] is b.prompt["pixel_values"]:  # rollouts and labels of one batch
        prompt.update({k: a.prompt[k] for k in _image_keys(a.prompt)})
    else:
        prompt.update({k: torch.cat([a.prompt[k], b.prompt[k]]) for k in _image_keys(a.prompt)})
        index_b = index_b + num_images(a.prompt)
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

    Each distinct image goes through the vision encoder once per call. Rows are scored part by
    part (see `Sequences.parts`) and in micro-batches of `micro_batch_size` rows (0: whole parts),
    each trimmed to its own longest prompt and completion; positions past a row's completion
    hold 0. The output head runs on `chunk_size` real completion positions at a time (see
    `_head_logps`), so memory grows with rows × tokens, not with the vocabulary as well.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 position, got {chunk_size}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n, width = seqs.ids.shape
    features = _image_features(model, seqs.prompt)
    out = []
    start = 0
    for size in seqs.parts or (n,):
        step = micro_batch_size if micro_batch_size > 0 else size
        for first in range(start, start + size, step):
            rows = torch.arange(first, min(start + size, first + step), device=seqs.ids.device)
            logp = _token_logps(model, seqs, rows, features, chunk_size, temperature)
            out.append(F.pad(logp, (0, width - logp.shape[1])))
        start += size
    return torch.cat(out)


def _image_features(model, prompt: dict) -> list | None:
    """The vision encoder's output for each distinct image (see `_split_encoded`), or None where
    the model must encode pixels itself.

    The images go through the model's own `get_image_features` once, with every per-image input
    it takes. Under FSDP the vision tower's parameters are only gathered inside the root's
    forward, so the sharded policy takes the pixels row by row instead.
    """
    if is_sharded(model) or not hasattr(model, "get_image_features"):
        return None
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
    if features is not None:
        row_features = _join_encoded([features[i] for i in image_index(p)[rows].tolist()])
        inputs["mm_encoder_outputs"] = {"image": row_features}
        # Inputs the forward needs besides the features (Qwen's grids place the image tokens).
        inputs.update({k: v for k, v in row_images(p, rows).items() if k != "pixel_values"})
    else:
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
