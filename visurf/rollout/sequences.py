"""Batches of prompt + completion token sequences, and the bookkeeping of their images.

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

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


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
