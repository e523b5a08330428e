"""Rows with no image, one image or two, side by side in one batch: processing, sampling and
scoring on Qwen2.5-VL, Qwen3-VL and Gemma 3 (token_logps against generate's own logits)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from tests.integration.test_families import FAMILIES, sampled_with_logps, tiny_family_dir
from visurf.models.loading import load_policy
from visurf.rollout import Sequences, concat, sample, select_prompts, token_logps

MIXED_FAMILIES = {"qwen2_5_vl": 112, "qwen3_vl": FAMILIES["qwen3_vl"], "gemma3": FAMILIES["gemma3"]}


def load(visurf_cache, tiny_dir, family: str):
    from tests.conftest import smoke_config

    path = tiny_dir if family == "qwen2_5_vl" else tiny_family_dir(visurf_cache, family)
    frame = MIXED_FAMILIES[family]
    cfg = smoke_config("model.source=path", f"model.path={path}", f"model.frame={frame}")
    model, processor = load_policy(cfg.model)
    if family == "gemma3":
        # The tiny Gemma 3 is built with its projection at its initial zeros: every image's
        # features are 0. Drawn at random here, so that which image a row shows matters.
        weight = model.model.multi_modal_projector.mm_input_projection_weight
        with torch.no_grad():
            weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
    return model.eval(), processor, frame


def pictures(frame: int) -> list[Image.Image]:
    """Three images that differ everywhere (a model sees which one it is given)."""
    gen = torch.Generator().manual_seed(0)
    return [
        Image.fromarray(torch.randint(0, 256, (frame, frame, 3), generator=gen, dtype=torch.uint8).numpy())
        for _ in range(3)
    ]


PROMPTS = ["What is two plus two?", "Find the circle.", "Which of <image> and <image> has more red?"]


@pytest.mark.parametrize("family", sorted(MIXED_FAMILIES))
def test_token_logps_equal_generate_with_no_one_and_two_images_per_row(
    visurf_cache, tiny_dir, family, monkeypatch
):
    import visurf.rollout.scoring as scoring

    model, processor, frame = load(visurf_cache, tiny_dir, family)
    a, b, c = pictures(frame)
    inputs = processor(PROMPTS, [None, a, [b, c]])
    assert inputs["image_index"].tolist() == [[-1, -1], [0, -1], [1, 2]]
    seqs, expected = sampled_with_logps(model, processor, inputs, max_new_tokens=6)
    assert seqs.prompt["image_index"].tolist() == [[-1, -1]] * 2 + [[0, -1]] * 2 + [[1, 2]] * 2
    real = seqs.mask > 0
    torch.manual_seed(0)  # visurf's sampler (Qwen-VL: one prefill per prompt) draws generate's samples
    knobs = dict(max_new_tokens=6, temperature=1.0, top_p=1.0, suppress_ids=processor.vision_token_ids)
    drawn = sample(model, inputs, 2, eos_id=processor.eos_token_id, pad_id=processor.pad_token_id, **knobs)
    assert torch.equal(drawn.ids, seqs.ids)
    with torch.no_grad():
        reused = token_logps(model, seqs)  # each image encoded once, its features reused
        monkeypatch.setattr(scoring, "_image_features", lambda model, prompt: None)
        encoded = token_logps(model, seqs, micro_batch_size=1)  # each row's own pixels
    torch.testing.assert_close(reused[real], expected[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(encoded[real], expected[real], atol=1e-5, rtol=0)

    # The two-image rows see their second image: another one there changes their scores.
    monkeypatch.undo()
    swapped = select_prompts(processor(PROMPTS[2:], [[b, a]]), torch.tensor([0, 0]))
    other = Sequences(swapped, seqs.ids[4:], seqs.mask[4:], seqs.truncated[4:])
    with torch.no_grad():
        changed = token_logps(model, other)
    assert not torch.allclose(changed[real[4:]], reused[4:][real[4:]], atol=1e-4)


def prompts_for(rows: list) -> list[str]:
    """The prompt of each row by its images: none, one or two."""
    return [PROMPTS[0 if r is None else 1 if isinstance(r, Image.Image) else 2] for r in rows]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "gemma3"])
def test_labels_of_a_separate_call_join_rollouts_of_mixed_rows(visurf_cache, tiny_dir, family):
    """Labels are scored beside the rollouts (concat): a text-only label row with two-image and
    one-image rollouts, and a two-image label with text-only rollouts, each as it scores alone."""
    model, processor, frame = load(visurf_cache, tiny_dir, family)
    a, b, c = pictures(frame)
    for rollout_rows, label_rows in (([a, [b, c]], [None]), ([None, None], [[c, a]])):
        rollouts, expected = sampled_with_logps(
            model, processor, processor(prompts_for(rollout_rows), rollout_rows), max_new_tokens=5
        )
        label = Sequences(
            processor(prompts_for(label_rows), label_rows),
            rollouts.ids[:1],
            rollouts.mask[:1],
            rollouts.truncated[:1],
        )
        with torch.no_grad():
            joined = token_logps(model, concat(rollouts, label, processor.pad_token_id))
            alone = token_logps(model, label)
        real = rollouts.mask > 0
        n = rollouts.ids.shape[0]
        torch.testing.assert_close(joined[:n][real], expected[real], atol=1e-5, rtol=0)
        torch.testing.assert_close(joined[n:], alone, atol=1e-5, rtol=0)


def test_a_family_laying_out_pixels_per_prompt_refuses_other_image_counts(visurf_cache):
    from tests.conftest import smoke_config

    path = tiny_family_dir(visurf_cache, "smolvlm")
    cfg = smoke_config("model.source=path", f"model.path={path}", "model.frame=112")
    _, processor = load_policy(cfg.model)
    a, b, _ = pictures(112)
    assert "image_index" not in processor(PROMPTS[1:2] * 2, [a, b])  # one each: row i shows image i
    with pytest.raises(ValueError, match=r"per prompt, so each prompt must have exactly one image"):
        processor(PROMPTS[:2], [None, a])


def test_the_prompt_places_each_image_at_its_marker(tiny_dir):
    from visurf.models.processing import VLProcessor

    processor = VLProcessor.from_pretrained(tiny_dir)
    vision = "<|vision_start|><|image_pad|><|vision_end|>"
    assert f"user\nWhich of {vision} and {vision} has more red?" in processor.prompt_text(PROMPTS[2], 2)
    assert f"user\n{vision}{vision}Find the circle." in processor.prompt_text(PROMPTS[1], 2)
    assert "user\nWhat is two plus two?<|im_end|>" in processor.prompt_text(PROMPTS[0], 0)
    assert "user\n\nFind it." in processor.prompt_text(
        "<image>\nFind it.", 0
    )  # a text-only row drops its marker
    with pytest.raises(ValueError, match="2 <image> markers for 3 images"):
        processor.prompt_text(PROMPTS[2], 3)
