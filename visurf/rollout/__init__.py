"""Rollouts: sequences of prompt + completion tokens (`sequences`), sampled by `generate`
(`sampling`), and their tokens' log-probabilities under a model (`scoring`)."""

from visurf.rollout.sampling import sample
from visurf.rollout.scoring import LOGIT_CHUNK, completion_token_type, token_logps
from visurf.rollout.sequences import (
    IMAGE_KEYS,
    TOKEN_KEYS,
    Sequences,
    completion_mask,
    concat,
    model_inputs,
    pad_completions,
    select_prompts,
)

__all__ = [
    "IMAGE_KEYS",
    "LOGIT_CHUNK",
    "TOKEN_KEYS",
    "Sequences",
    "completion_mask",
    "completion_token_type",
    "concat",
    "model_inputs",
    "pad_completions",
    "sample",
    "select_prompts",
    "token_logps",
]
