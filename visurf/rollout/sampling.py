"""Sampling completions: the rollouts of a policy stage and the greedy answers of an evaluation.

Models whose prompts can be prefilled once for all their samples (`supports_shared_prompts`)
take `visurf.rollout.decoding`, which gives generate's samples for the same seed; the others
take transformers' `generate`.
"""

from __future__ import annotations

import torch

from visurf.rollout.decoding import sample_shared
from visurf.rollout.prefix import supports_shared_prompts
from visurf.rollout.sequences import Sequences, completion_mask, model_inputs, select_prompts


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
    """`num_samples` completions per prompt (KV cache on).

    Rows come out grouped by prompt: prompt 0's samples first, then prompt 1's, ...
    """
    was_training = model.training
    model.eval()
    knobs = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, greedy=greedy)
    try:
        if supports_shared_prompts(model, inputs) and not synced_gpus:
            ids = sample_shared(
                model,
                model_inputs(inputs),
                num_samples,
                eos_id=eos_id,
                pad_id=pad_id,
                suppress_ids=suppress_ids,
                **knobs,
            )
        else:
            ids = _generate(model, inputs, num_samples, eos_id, pad_id, suppress_ids, synced_gpus, **knobs)
    finally:
        model.train(was_training)
    if ids.shape[1] == 0:
        ids = torch.full((ids.shape[0], 1), pad_id, dtype=torch.long, device=ids.device)
    mask, truncated = completion_mask(ids, eos_id)
    ids = ids.masked_fill(mask == 0, pad_id)
    index = torch.arange(inputs["input_ids"].shape[0], device=ids.device).repeat_interleave(num_samples)
    return Sequences(select_prompts(inputs, index), ids, mask, truncated)


def _generate(
    model,
    inputs,
    num_samples,
    eos_id,
    pad_id,
    suppress_ids,
    synced_gpus,
    *,
    max_new_tokens,
    temperature,
    top_p,
    greedy,
) -> torch.Tensor:
    """The completion ids [B * G, steps] of transformers' `generate`."""
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
        synced_gpus=synced_gpus,  # True under FSDP: see visurf.training.distributed.generation_context
    )
    return out[:, inputs["input_ids"].shape[1] :]
