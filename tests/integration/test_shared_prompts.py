"""One prefill per prompt, on the real tiny Qwen2.5-VL: sampling gives generate's own samples for
the same seed (rows that end leave the decode batch), and scoring rows that share prompts gives
the padded batch's log-probabilities and gradients."""

from __future__ import annotations

import pytest
import torch

import visurf.rollout.scoring as scoring
from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import load_policy
from visurf.rollout import Sequences, concat, pad_completions, select_prompts, token_logps
from visurf.rollout.decoding import sample_shared
from visurf.rollout.prefix import supports_shared_prompts
from visurf.rollout.sampling import _generate, sample
from visurf.rollout.sequences import model_inputs
from visurf.rollout.shared_prompts import distinct_prompts


@pytest.fixture(scope="module")
def setup(visurf_cache):
    cfg = compose_config(["experiment=smoke"])
    policy, processor = load_policy(cfg.model)
    examples = load_examples(cfg.data, 112, "train")[:3]
    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    return policy.eval(), processor, inputs


def frequent_token(ids: torch.Tensor, skip: list[int]) -> int:
    """A token the tiny model samples often: as end-of-turn it ends rows at different steps."""
    counts = torch.bincount(ids[:, 1:].flatten())
    counts[skip] = 0
    return int(counts.argmax())


@pytest.mark.parametrize(
    "greedy,temperature,top_p", [(False, 1.0, 1.0), (False, 0.7, 0.9), (True, 1.0, 1.0)], ids=str
)
def test_samples_are_generates_own_for_the_same_seed(setup, greedy, temperature, top_p):
    model, processor, inputs = setup
    g = 1 if greedy else 4
    knobs = dict(max_new_tokens=20, temperature=temperature, top_p=top_p, greedy=greedy)
    vision = processor.vision_token_ids

    def both(eos_id):
        out = []
        for draw in (
            lambda: _generate(model, inputs, g, eos_id, processor.pad_token_id, vision, None, **knobs),
            lambda: sample_shared(
                model,
                model_inputs(inputs),
                g,
                eos_id=eos_id,
                pad_id=processor.pad_token_id,
                suppress_ids=vision,
                **knobs,
            ),
        ):
            torch.manual_seed(7)
            out.append(draw())
        return out

    generated, shared = both(processor.eos_token_id)
    assert torch.equal(generated, shared)
    # With an end-of-turn token the model samples often, rows end at different steps and leave
    # the decode batch while the others go on: still generate's samples, token for token.
    eos = frequent_token(generated, [*vision, processor.pad_token_id, processor.eos_token_id])
    generated, shared = both(eos)
    ends = [(row == eos).nonzero()[0].item() if (row == eos).any() else None for row in generated]
    assert len(set(ends)) > 1 and any(e is not None and e < generated.shape[1] - 1 for e in ends)
    assert torch.equal(generated, shared)


def test_sample_takes_the_shared_path_and_its_log_probs_are_the_same(setup, monkeypatch):
    """`sample` on a Qwen-VL model uses the shared prefill; its rollouts score as generate's do."""
    model, processor, inputs = setup
    assert supports_shared_prompts(model)
    kw = dict(max_new_tokens=16, temperature=1.0, top_p=1.0, eos_id=15, pad_id=processor.pad_token_id)
    torch.manual_seed(1)
    shared = sample(model, inputs, 4, suppress_ids=processor.vision_token_ids, **kw)
    monkeypatch.setattr("visurf.rollout.sampling.supports_shared_prompts", lambda *args: False)
    torch.manual_seed(1)
    generated = sample(model, inputs, 4, suppress_ids=processor.vision_token_ids, **kw)
    assert torch.equal(shared.ids, generated.ids) and torch.equal(shared.mask, generated.mask)
    with torch.no_grad():
        torch.testing.assert_close(token_logps(model, shared), token_logps(model, generated), atol=0, rtol=0)


def test_rows_are_grouped_by_their_prompt_and_image(setup):
    _, _, inputs = setup
    prompt = select_prompts(inputs, torch.tensor([2, 0, 2, 1, 0]))
    firsts, inverse = distinct_prompts(prompt, torch.arange(5))
    assert [firsts[i].item() for i in inverse] == [0, 1, 0, 3, 1]  # each row's first row of its prompt
    assert len(firsts) == 3


def rollouts_and_labels(model, processor, inputs) -> Sequences:
    """G = 3 sampled rollouts per prompt, then a label for prompts 0 and 2 (a second part)."""
    torch.manual_seed(0)
    rollouts = sample(
        model,
        inputs,
        3,
        max_new_tokens=12,
        temperature=1.0,
        top_p=1.0,
        eos_id=15,
        pad_id=processor.pad_token_id,
        suppress_ids=processor.vision_token_ids,
    )
    texts = ["<think>a red circle</think><answer>[]</answer>", "<answer>[]</answer>"]
    ids, mask = pad_completions(
        processor.completion_ids(texts), processor.pad_token_id, processor.eos_token_id
    )
    labels = Sequences(
        select_prompts(inputs, torch.tensor([0, 2])), ids, mask, torch.zeros(2, dtype=torch.bool)
    )
    return concat(rollouts, labels, processor.pad_token_id)


def scores_and_grads(model, seqs, micro_batch_size, temperature):
    weights = torch.randn(seqs.ids.shape, generator=torch.Generator().manual_seed(0)) * seqs.mask
    model.zero_grad(set_to_none=True)
    logp = token_logps(model, seqs, micro_batch_size, temperature=temperature)
    (logp * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return logp.detach(), grads


@pytest.mark.parametrize(
    "micro_batch_size,temperature,bucket_rows", [(0, 1.0, 16), (0, 1.0, 2), (4, 0.7, 2)], ids=str
)
def test_shared_prompt_scoring_equals_the_padded_batch(
    setup, monkeypatch, micro_batch_size, temperature, bucket_rows
):
    """Whole batch in one pass, in passes of rows of similar lengths (labels among them), and in
    micro-batches of each part."""
    import visurf.rollout.shared_prompts as shared_prompts

    model, processor, inputs = setup
    monkeypatch.setattr(shared_prompts, "BUCKET_ROWS", bucket_rows)
    seqs = rollouts_and_labels(model, processor, inputs)
    assert seqs.parts == (9, 2) and seqs.mask.sum(-1).min() < seqs.mask.sum(-1).max()
    shared, shared_grads = scores_and_grads(model, seqs, micro_batch_size, temperature)
    monkeypatch.setattr(scoring, "supports_shared_prompts", lambda *args: False)
    padded, padded_grads = scores_and_grads(model, seqs, micro_batch_size, temperature)
    torch.testing.assert_close(shared, padded, atol=1e-5, rtol=0)
    assert (shared[seqs.mask == 0] == 0).all()
    assert shared_grads.keys() == padded_grads.keys() and "lm_head.weight" in shared_grads
    for name, grad in padded_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5 * grad.abs().max().item(), rtol=0)


def test_gradient_checkpointing_scores_every_row_in_full(setup):
    """transformers turns the KV cache off under gradient checkpointing while training, so the
    shared prompt pass has no cache to continue: such a model scores every row's prompt."""
    model, processor, inputs = setup
    seqs = rollouts_and_labels(model, processor, inputs)
    assert supports_shared_prompts(model.train())
    model.gradient_checkpointing_enable()
    try:
        assert not supports_shared_prompts(model)
        with torch.no_grad():
            logps = token_logps(model, seqs)
        assert logps.shape == seqs.ids.shape and torch.isfinite(logps).all()
        assert supports_shared_prompts(model.eval())  # generation and evaluation keep it
    finally:
        model.gradient_checkpointing_disable()
        model.eval()
