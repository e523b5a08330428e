"""Scoring sequences on the real tiny Qwen2.5-VL: each image is encoded once for all the rows that
share it, and stacked parts are scored at their own width, with the same log-probabilities as
one padded forward pass that takes every row's pixels."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import load_policy
from visurf.rollout import Sequences, concat, pad_completions, sample, select_prompts, token_logps
from visurf.rollout.sequences import image_index, image_parts, row_images


def images(prompt: dict) -> list[torch.Tensor]:
    """The pixel patches of each distinct image."""
    return [part["pixel_values"] for part in image_parts(prompt)]


def row_grids(prompt: dict) -> torch.Tensor:
    """image_grid_thw of every row's image (the prompt keeps one per distinct image)."""
    return row_images(prompt, list(range(prompt["input_ids"].shape[0])))["image_grid_thw"]


@pytest.fixture(scope="module")
def setup(visurf_cache):
    cfg = compose_config(["experiment=smoke"])
    policy, processor = load_policy(cfg.model)
    examples = load_examples(cfg.data, 112, "train")[:3]
    return policy.eval(), processor, examples


def batch(processor, examples, texts, repeat: int = 1, inputs=None) -> Sequences:
    if inputs is None:
        inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    index = torch.arange(len(examples)).repeat_interleave(repeat)
    ids, mask = pad_completions(
        processor.completion_ids(texts), processor.pad_token_id, processor.eos_token_id
    )
    prompt = select_prompts(inputs, index) if repeat > 1 else inputs
    return Sequences(prompt, ids, mask, torch.zeros(len(texts), dtype=torch.bool))


def reference_logps(model, seqs: Sequences) -> torch.Tensor:
    """One forward pass over the whole padded batch, every row with its own copy of its image."""
    p, chunks = seqs.prompt, images(seqs.prompt)
    index = p.get("image_index", torch.arange(seqs.ids.shape[0])).tolist()
    out = model(
        input_ids=torch.cat([p["input_ids"], seqs.ids], 1),
        attention_mask=torch.cat([p["attention_mask"], seqs.mask.long()], 1),
        pixel_values=torch.cat([chunks[i] for i in index]),
        image_grid_thw=row_grids(p),
        mm_token_type_ids=torch.cat([p["mm_token_type_ids"], torch.zeros_like(seqs.ids)], 1),
        use_cache=False,
    )
    logits = out.logits[:, p["input_ids"].shape[1] - 1 : -1].float()
    return torch.log_softmax(logits, -1).gather(-1, seqs.ids[..., None])[..., 0]


ROLLOUTS = ["<think>a</think><answer>[]</answer>", "<answer>[]</answer>", "x"]


def test_rows_sharing_a_prompt_share_one_image(setup):
    model, processor, examples = setup
    seqs = batch(processor, examples, ROLLOUTS * 2, repeat=2)
    assert seqs.prompt["pixel_values"].shape[0] == 3 * 64  # three images, not six
    assert seqs.prompt["image_index"].tolist() == [0, 0, 1, 1, 2, 2]
    picked = select_prompts(seqs.prompt, torch.tensor([4, 5]))
    assert picked["image_index"].tolist() == [0, 0]
    assert torch.equal(picked["pixel_values"], images(seqs.prompt)[2])


def test_vision_encoder_runs_once_per_distinct_image(setup, monkeypatch):
    model, processor, examples = setup
    seqs = batch(processor, examples, ROLLOUTS * 4, repeat=4)
    encoded = []
    original = type(model).get_image_features

    def counting(self, pixel_values, image_grid_thw=None, **kwargs):
        encoded.append(image_grid_thw.shape[0])
        return original(self, pixel_values, image_grid_thw, **kwargs)

    monkeypatch.setattr(type(model), "get_image_features", counting)
    with torch.no_grad():
        token_logps(model, seqs)
    assert encoded == [3]


def test_shared_images_and_parts_give_the_padded_batch_logps(setup):
    model, processor, examples = setup
    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    rollouts = batch(processor, examples, ROLLOUTS * 2, repeat=2, inputs=inputs)
    long_label = "<think>" + "I see a red circle. " * 6 + "</think><answer>[]</answer>"
    label_texts = [long_label, "<answer>[]</answer>", long_label]
    shared = concat(rollouts, batch(processor, examples, label_texts, inputs=inputs), 0)
    separate = concat(rollouts, batch(processor, examples, label_texts), 0)
    assert shared.prompt["pixel_values"].shape[0] == 3 * 64  # the labels reuse the rollouts' images
    assert separate.prompt["pixel_values"].shape[0] == 6 * 64
    for seqs in (shared, separate):
        assert seqs.parts == (6, 3)
        assert seqs.prompt["image_index"].tolist()[6:] == ([0, 1, 2] if seqs is shared else [3, 4, 5])
        with torch.no_grad():
            expected = reference_logps(model, seqs)
            for micro in (0, 2):
                got = token_logps(model, seqs, micro_batch_size=micro)
                assert got.shape == expected.shape
                assert torch.allclose(got * seqs.mask, expected * seqs.mask, atol=1e-5), micro
                assert (got[seqs.mask == 0] == 0).all()


def test_gradients_through_a_shared_image_match_per_row_images(setup):
    model, processor, examples = setup
    seqs = batch(processor, examples[:2], ROLLOUTS[:2] * 2, repeat=2)
    params = list(model.model.visual.parameters())

    def vision_grads(logp):
        model.zero_grad()
        (logp * seqs.mask).sum().backward()
        return [p.grad.clone() for p in params]

    shared = vision_grads(token_logps(model, seqs))
    per_row = vision_grads(reference_logps(model, seqs))
    assert any(g.abs().sum() > 0 for g in shared)
    for a, b in zip(shared, per_row):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_features_go_in_as_the_model_expects(setup):
    """transformers takes precomputed image features as `mm_encoder_outputs` (no pixels)."""
    model, processor, examples = setup
    inputs = processor([examples[0].prompt], [examples[0].image])
    feats = model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"], return_dict=True)
    with torch.no_grad():
        a = model(**inputs, use_cache=False).logits
        b = model(
            **{k: v for k, v in inputs.items() if k != "pixel_values"},
            mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=list(feats.pooler_output))},
            use_cache=False,
        ).logits
    assert torch.allclose(a, b, atol=1e-6)


def test_sampling_from_rows_that_share_images(setup):
    """`sample` takes a prompt batch whose rows share images, as the processor's own batch."""
    model, processor, examples = setup
    picked = [examples[0], examples[0], examples[2]]
    shared = select_prompts(
        processor([e.prompt for e in examples], [e.image for e in examples]), torch.tensor([0, 0, 2])
    )
    plain = processor([e.prompt for e in picked], [e.image for e in picked])
    kwargs = dict(max_new_tokens=6, temperature=1.0, top_p=1.0, greedy=True)
    ids = [
        sample(model, inputs, 1, eos_id=processor.eos_token_id, pad_id=processor.pad_token_id, **kwargs).ids
        for inputs in (shared, plain)
    ]
    assert torch.equal(ids[0], ids[1])


def test_a_checkpoints_generation_config_does_not_change_rollouts_or_greedy_answers(setup):
    """Qwen-Instruct checkpoints ship sampling defaults (repetition penalty, top-k); visurf's
    rollouts are samples of the policy itself, and its greedy evaluation is plain argmax."""
    policy, processor, examples = setup
    tok = processor.tokenizer
    inputs = processor([e.prompt for e in examples[:2]], [e.image for e in examples[:2]])

    def outputs():
        torch.manual_seed(0)
        kw = dict(
            max_new_tokens=24, temperature=1.0, top_p=1.0, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id
        )
        sampled = sample(policy, inputs, 4, **kw).ids
        greedy = sample(policy, inputs, 1, greedy=True, **kw).ids
        return sampled, greedy

    clean = outputs()
    saved = policy.generation_config
    try:
        policy.generation_config = copy.deepcopy(saved)
        for key, value in dict(
            repetition_penalty=3.0, top_k=1, no_repeat_ngram_size=2, typical_p=0.2
        ).items():
            setattr(policy.generation_config, key, value)
        shipped = outputs()
    finally:
        policy.generation_config = saved
    assert torch.equal(clean[0], shipped[0]) and torch.equal(clean[1], shipped[1])
    assert len({tuple(r.tolist()) for r in clean[0][:4]}) > 1  # the four samples of a prompt differ


# -- chunked scoring: the same values and gradients as full logits ---------------------------------


def full_logits_logps(
    model, seqs: Sequences, reuse_features: bool = True, temperature: float = 1.0
) -> torch.Tensor:
    """What scoring computed before it was chunked, written out plainly: the full logits of every
    completion position in float32, then a log-softmax over the vocabulary (one pass; each image
    encoded once and its features reused, or every row's pixels re-encoded in the forward)."""
    p, c = seqs.prompt, seqs.ids.shape[1]
    index = image_index(p).tolist()
    if reuse_features:
        grids = p["image_grid_thw"]  # one per distinct image
        features = model.get_image_features(p["pixel_values"], grids, return_dict=True).pooler_output
        vision = {
            "mm_encoder_outputs": {
                "image": BaseModelOutputWithPooling(pooler_output=[features[i] for i in index])
            }
        }
    else:
        chunks = images(p)
        vision = {"pixel_values": torch.cat([chunks[i] for i in index])}
    out = model(
        input_ids=torch.cat([p["input_ids"], seqs.ids], 1),
        attention_mask=torch.cat([p["attention_mask"], seqs.mask.long()], 1),
        image_grid_thw=row_grids(p),
        mm_token_type_ids=torch.cat([p["mm_token_type_ids"], torch.zeros_like(seqs.ids)], 1),
        logits_to_keep=c + 1,
        use_cache=False,
        **vision,
    )
    logits = out.logits[:, :-1].float() / temperature
    logp = torch.log_softmax(logits, -1).gather(-1, seqs.ids[..., None])[..., 0]
    return logp.masked_fill(seqs.mask == 0, 0.0)


def grads_of(model, logp: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    (logp * weights).sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_scores(model, seqs: Sequences, chunk_size: int, reuse_features: bool, monkeypatch):
    import visurf.rollout.scoring as rollout

    if not reuse_features:  # the path FSDP takes: every row's pixels go through the forward
        monkeypatch.setattr(rollout, "_image_features", lambda model, prompt: None)
    weights = torch.randn(seqs.ids.shape, generator=torch.Generator().manual_seed(0)) * seqs.mask
    expected = full_logits_logps(model, seqs, reuse_features)
    expected_grads = grads_of(model, expected, weights)
    got = token_logps(model, seqs, chunk_size=chunk_size)
    got_grads = grads_of(model, got, weights)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert (got[seqs.mask == 0] == 0).all()
    assert expected_grads.keys() == got_grads.keys() and expected_grads
    # Gradients to 1e-6 of their scale (float32 sums in another order differ by ~1e-7 relative):
    # every entry within 1e-6 of the largest gradient entry, and the whole difference's norm
    # within 1e-6 of the gradient's norm.
    scale = max(g.abs().max() for g in expected_grads.values())
    diff = {n: got_grads[n] - g for n, g in expected_grads.items()}
    worst = max(d.abs().max() for d in diff.values())
    assert worst <= 1e-6 * scale, (worst, scale)
    norm = lambda grads: torch.sqrt(sum((g**2).sum() for g in grads.values()))  # noqa: E731
    assert norm(diff) <= 1e-6 * norm(expected_grads)
    return got_grads


@pytest.mark.parametrize("reuse_features", [True, False], ids=["image-features-reused", "pixels-re-encoded"])
@pytest.mark.parametrize("chunk_size", [5, 4096])
def test_chunked_scoring_equals_the_full_log_softmax(setup, monkeypatch, chunk_size, reuse_features):
    model, processor, examples = setup
    seqs = batch(processor, examples[:2], ["<think>a</think><answer>[]</answer>", "x"])
    got = assert_same_scores(model, seqs, chunk_size, reuse_features, monkeypatch)
    with torch.no_grad():  # scoring without gradients takes its own (in-place) path
        expected = full_logits_logps(model, seqs, reuse_features)
        torch.testing.assert_close(
            token_logps(model, seqs, chunk_size=chunk_size), expected, atol=1e-6, rtol=0
        )
    # Gradients reach the output head, the decoder and the vision tower.
    assert {"lm_head.weight", "model.language_model.norm.weight"} <= got.keys()
    assert any(name.startswith("model.visual.") for name in got)


def test_scoring_at_a_sampling_temperature_is_the_tempered_log_softmax(setup):
    """A policy loss scores its rollouts as they were sampled: log_softmax(logits / T)."""
    model, processor, examples = setup
    seqs = batch(processor, examples[:2], ["<think>a</think><answer>[]</answer>", "x"])
    weights = torch.randn(seqs.ids.shape, generator=torch.Generator().manual_seed(0)) * seqs.mask
    expected = full_logits_logps(model, seqs, temperature=0.7)
    expected_grads = grads_of(model, expected, weights)
    got = token_logps(model, seqs, chunk_size=5, temperature=0.7)
    got_grads = grads_of(model, got, weights)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # Each parameter's gradient within 1e-5 of its largest entry: scored in passes of similar
    # lengths, the rows' gradients are summed in another order than the padded batch's.
    for name, grad in expected_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-5 * grad.abs().max().item(), rtol=0)
    with torch.no_grad():  # the in-place path without gradients
        torch.testing.assert_close(token_logps(model, seqs, temperature=0.7), expected, atol=1e-6, rtol=0)
        at_one = token_logps(model, seqs)
    assert (got - at_one).abs().max() > 1e-3  # the temperature does change the scores
    with pytest.raises(ValueError, match="temperature"):
        token_logps(model, seqs, temperature=0.0)


@pytest.mark.parametrize("adapt_head", [False, True], ids=["decoder-adapters", "head-adapted-too"])
def test_chunked_scoring_under_peft_adapters(tiny_dir, setup, monkeypatch, adapt_head):
    """Under a PeftModel the hooked head is the adapted one; disable_adapter() scores the base."""
    from tests.integration.test_adapters import load_adapted, perturb_adapters

    _, processor, examples = setup
    head = ("peft.target_modules='.*(?:q_proj|v_proj|lm_head)'",) if adapt_head else ()
    model, _, _ = load_adapted(tiny_dir, "peft=lora", *head)
    perturb_adapters(model)
    seqs = batch(processor, examples[:2], ["<think>a</think><answer>[]</answer>", "<answer>[]</answer>"])
    grads = assert_same_scores(model, seqs, 3, True, monkeypatch)
    assert all("lora_" in name for name in grads)
    assert any("lm_head.lora_" in name for name in grads) == adapt_head
    with torch.no_grad():
        adapted = token_logps(model, seqs, chunk_size=3)
        with model.disable_adapter():
            base = token_logps(model, seqs, chunk_size=3)
            torch.testing.assert_close(base, full_logits_logps(model, seqs), atol=1e-6, rtol=0)
    assert not torch.allclose(adapted, base, atol=1e-3)


def test_rows_without_completion_tokens_score_zero_and_keep_the_graph(setup):
    model, processor, examples = setup
    seqs = batch(processor, examples[:2], ["", ""])
    seqs = replace(seqs, mask=torch.zeros_like(seqs.mask))
    logp = token_logps(model, seqs, chunk_size=2)
    assert logp.shape == seqs.ids.shape and (logp == 0).all()
    logp.sum().backward()  # a loss over no tokens still backpropagates (to zero gradients)
    model.zero_grad()


def test_chunk_size_must_be_positive(setup):
    model, processor, examples = setup
    with pytest.raises(ValueError, match="chunk_size"):
        token_logps(model, batch(processor, examples[:1], ["x"]), chunk_size=0)


def test_a_model_whose_forward_bypasses_its_output_head_is_refused(setup, monkeypatch):
    """The padded path (every family without shared prompts) scores through the forward's head."""
    import visurf.rollout.scoring as rollout

    model, processor, examples = setup
    monkeypatch.setattr(rollout, "supports_shared_prompts", lambda *args: False)
    stray = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=False)
    monkeypatch.setattr(model, "get_output_embeddings", lambda: stray)
    with pytest.raises(RuntimeError, match="get_output_embeddings"), torch.no_grad():
        token_logps(model, batch(processor, examples[:1], ["x"]))
