"""Token scoring's memory grows with rows × tokens, not with the vocabulary: measured on the tiny
Qwen2.5-VL of the repo's builder widened to Qwen2.5-VL's vocabulary (151,936 entries), one layer
of width 64, so the output head decides the memory (experiments/bench/bench_memory.py, the same
measurement over more sizes)."""

from __future__ import annotations

import os

import pytest
import torch

from experiments.bench.bench_memory import (
    full_logits_logps,
    make_batch,
    peak_growth,
    release_freed_memory,
    scoring_pass,
    training_pass,
    usual_malloc,
    wide_model,
)
from visurf.models.processing import VLProcessor
from visurf.rollout import token_logps

VOCAB = 151_936
CHUNK = 32
MiB = 2**20

pytestmark = pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="peak memory is read from Linux's /proc"
)


@pytest.fixture(scope="module")
def wide(tiny_dir):
    release_freed_memory()
    processor = VLProcessor.from_pretrained(tiny_dir)
    model = wide_model(VOCAB, processor)
    training_pass(model, make_batch(processor, 1, 4), full_logits_logps)  # gradient buffers exist
    yield model, processor
    usual_malloc()  # the rest of the suite allocates as a long-running process usually does


def fp32_logits_mib(rows: int, tokens: int) -> float:
    return rows * tokens * VOCAB * 4 / MiB


def chunked(model, seqs):
    return token_logps(model, seqs, chunk_size=CHUNK)


def test_scoring_memory_grows_with_rows_times_tokens_not_the_vocabulary(wide):
    model, processor = wide
    small, large = make_batch(processor, 1, 16), make_batch(processor, 4, 64)
    # The instrument sees vocabulary-sized tensors: the full-logits path needs its float32 logits.
    full, _ = peak_growth(lambda: scoring_pass(model, large, full_logits_logps))
    assert full >= fp32_logits_mib(4, 64)
    grown = {}
    for name, seqs in (("small", small), ("large", large)):
        grown[name], logp = peak_growth(lambda seqs=seqs: scoring_pass(model, seqs, chunked))
        assert logp.dtype == torch.float32 and torch.isfinite(logp).all()
    # 16 -> 256 scored positions: the full path's logits grow by 139 MiB; the chunked pass keeps
    # one chunk of logits (32 positions: 19 MiB) whatever the number of positions.
    # The two passes differ by at most that one chunk (the small pass may free its smaller chunk
    # before the instrument sees it), not by anything vocabulary-sized times the positions.
    assert (
        grown["large"] - grown["small"]
        < fp32_logits_mib(1, 32) + 2
        < 0.15 * (fp32_logits_mib(4, 64) - fp32_logits_mib(1, 16))
    )
    assert grown["large"] < 0.5 * fp32_logits_mib(4, 64) < 0.25 * full


def test_a_training_pass_keeps_one_chunk_of_logits_at_a_time(wide):
    model, processor = wide
    # Both sizes span several chunks: each chunk adds its own gradient of the head's weight
    # (vocabulary × width, like any parameter's gradient), which autograd sums as they come.
    small, large = make_batch(processor, 2, 32), make_batch(processor, 4, 64)
    model.zero_grad(set_to_none=False)
    full, loss_full = peak_growth(lambda: training_pass(model, large, full_logits_logps))
    grads_full = model.lm_head.weight.grad.clone()
    grown = {}
    for name, seqs in (("small", small), ("large", large)):
        model.zero_grad(set_to_none=False)
        grown[name], loss = peak_growth(lambda seqs=seqs: training_pass(model, seqs, chunked))
    torch.testing.assert_close(loss, loss_full, atol=1e-6, rtol=0)
    torch.testing.assert_close(model.lm_head.weight.grad, grads_full, atol=1e-7, rtol=1e-4)
    assert full >= fp32_logits_mib(4, 64)
    # 64 -> 256 positions: the full path's float32 logits grow by 111 MiB.
    assert grown["large"] - grown["small"] < 0.1 * (fp32_logits_mib(4, 64) - fp32_logits_mib(2, 32))
    assert grown["large"] < full
