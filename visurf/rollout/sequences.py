"""Batches of prompt + completion token sequences, and the bookkeeping of their images.

A row of a `Sequences` batch is one completion of one prompt. Model inputs are handled by kind,
whatever the family calls them:
- token-aligned keys (`TOKEN_KEYS`: input ids, attention mask, token types) hold one value per
  prompt token; they are left-padded together and extended with the completion when scoring;
- per-image keys (`IMAGE_KEYS`: pixels, Qwen's grids, SmolVLM's pixel masks, LLaVA's sizes) hold
  each distinct image once: `prompt["image_index"]` says which images a row shows: [N] where
  every row shows one, else [N, K] in the prompt's order, -1 padding a row with fewer than K (a
  text-only row: none); absent, row i shows image i. Scoring encodes each image once for all the rows that share it (the G rollouts and
  the label of a prompt);
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
    if prompt.get("pixel_values") is None:  # text-only rows
        return 0
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
    """The image of each row, an index into the prompt's distinct images: [N] where every row
    shows one image, else [N, K] (`image_table`)."""
    return stored_index(image_table(prompt))


def image_table(prompt: dict) -> torch.Tensor:
    """[N, K] the images of each row, indices into the prompt's distinct images (-1: none)."""
    index = prompt.get("image_index")
    if index is None:
        rows, device = prompt["input_ids"].shape[0], prompt["input_ids"].device
        width = 1 if num_images(prompt) else 0
        index = torch.arange(rows, device=device)[:, None].expand(rows, width)
    return index[:, None] if index.dim() == 1 else index


def stored_index(index: torch.Tensor) -> torch.Tensor:
    """`image_index` as a prompt keeps it: [N] where every row shows exactly one image, else [N, K]."""
    return index[:, 0] if index.shape[1] == 1 and bool((index >= 0).all()) else index


def images_in_order(index: torch.Tensor) -> list[int]:
    """The images of rows `index` [R, K] one after another, as their prompts' tokens place them."""
    return [i for i in index.reshape(-1).tolist() if i >= 0]


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
    """The per-image inputs for `rows`, each row with its own copy of its images (as a model's
    forward and generate take them); none for text-only rows."""
    index = images_in_order(image_table(prompt)[rows])
    if index == list(range(num_images(prompt))):
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
    rows = image_table(inputs)[index]
    used = torch.unique(rows[rows >= 0])
    renumber = torch.full((num_images(inputs) + 1,), -1, dtype=torch.long, device=rows.device)
    renumber[used] = torch.arange(used.numel(), device=rows.device)
    out = {k: inputs[k][index] for k in _token_keys(inputs) + _row_keys(inputs)}
    if used.numel() == num_images(inputs):  # every image still used: share the tensors
        out.update({k: inputs[k] for k in _image_keys(inputs)})
    else:
        parts = image_parts(inputs)
        out.update(join_images([parts[i] for i in used.tolist()]))
    out["image_index"] = stored_index(renumber[rows])  # -1 (no image) picks the last entry: -1
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
    index_a, index_b = image_table(a.prompt), image_table(b.prompt)
    k = max(index_a.shape[1], index_b.shape[1])
    index_a, index_b = (F.pad(i, (0, k - i.shape[1]), value=-1) for i in (index_a, index_b))
    pixels = a.prompt.get("pixel_values")
    if pixels is not None and pixels is b.prompt.get("pixel_values"):  # rollouts and labels of one batch
        prompt.update({key: a.prompt[key] for key in _image_keys(a.prompt)})
    else:
        keys = dict.fromkeys(_image_keys(a.prompt) + _image_keys(b.prompt))
        prompt.update(
            {key: torch.cat([p[key] for p in (a.prompt, b.prompt) if p.get(key) is not None]) for key in keys}
        )
        index_b = torch.where(index_b >= 0, index_b + num_images(a.prompt), index_b)
    prompt["image_index"] = stored_index(torch.cat([index_a, index_b]))
    parts = (a.parts or (a.ids.shape[0],)) + (b.parts or (b.ids.shape[0],))
    return Sequences(
        prompt,
        torch.cat([a.ids, b.ids]),
        torch.cat([a.mask, b.mask]),
        torch.cat([a.truncated, b.truncated]),
        parts,
    )
