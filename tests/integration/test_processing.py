"""The one processing path: the stock processor where it builds, the same class for images only elsewhere."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from visurf.models.processing import VLProcessor

IMAGE_PAD = "<|image_pad|>"


def images():
    return [Image.new("RGB", (112, 112), (10, 200, 30)), Image.new("RGB", (112, 112), (200, 10, 30))]


def test_images_only_processor_builds_expanded_image_tokens_and_vision_inputs(tiny_dir):
    proc = VLProcessor.from_pretrained(tiny_dir, prefer_stock=False)
    assert proc.backend == "images_only"
    assert type(proc.processor).__name__ == "Qwen2_5_VLProcessor"  # the family's own class
    assert proc.image_token == IMAGE_PAD
    assert proc.tokenizer.convert_ids_to_tokens(proc.eos_token_id) == "<|im_end|>"  # from the template
    vision = {"<|vision_start|>", "<|vision_end|>", IMAGE_PAD, "<|video_pad|>"}
    assert set(proc.tokenizer.convert_ids_to_tokens(proc.vision_token_ids)) == vision
    out = proc(["Find the red circle.", "Find all the blue shapes please."], images())
    grid = out["image_grid_thw"]
    assert grid.tolist() == [[1, 8, 8], [1, 8, 8]]  # 112 px / patch 14
    n_tokens = int(grid[0].prod()) // proc.merge_size**2
    for row, types in zip(out["input_ids"], out["mm_token_type_ids"]):
        assert int((row == proc.image_token_id).sum()) == n_tokens == 16
        assert torch.equal(types == 1, row == proc.image_token_id)
    assert out["pixel_values"].shape == (2 * 64, 3 * 2 * 14 * 14)
    # Left padding: the shorter prompt is padded at the front, prompts end aligned.
    assert out["attention_mask"][0, 0] == 0 and out["attention_mask"][:, -1].all()
    text = proc.prompt_text("Find x.")
    assert text.count(IMAGE_PAD) == 1 and text.endswith("<|im_start|>assistant\n")


def test_on_this_machine_the_path_is_chosen_by_torchvision(tiny_dir):
    proc = VLProcessor.from_pretrained(tiny_dir)
    expected = "stock" if importlib.util.find_spec("torchvision") else "images_only"
    assert proc.backend == expected


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None,
    reason="the stock Qwen2.5-VL processor needs torchvision (a GPU machine has it)",
)
def test_stock_and_fallback_give_identical_inputs(tiny_dir):
    """The fallback is the same processor class built for images only (tests/integration/test_gpu.py calls this by name)."""
    stock = VLProcessor.from_pretrained(tiny_dir)
    fallback = VLProcessor.from_pretrained(tiny_dir, prefer_stock=False)
    assert stock.backend == "stock"
    prompts = ["Find the red circle.", "Find all the blue shapes please."]
    a, b = stock(prompts, images()), fallback(prompts, images())
    for key in ("input_ids", "attention_mask", "image_grid_thw", "mm_token_type_ids"):
        assert torch.equal(a[key], b[key]), key
    assert torch.allclose(a["pixel_values"], b["pixel_values"], atol=1e-5)


def test_completion_ids_end_with_the_end_of_turn_token(tiny_dir):
    proc = VLProcessor.from_pretrained(tiny_dir)
    ids = proc.completion_ids(["<answer>[]</answer>"])[0]
    assert ids[-1] == proc.eos_token_id
    assert proc.decode(ids) == "<answer>[]</answer>"


def test_completion_tokens_tokenize_the_whole_text_with_start_offsets(tiny_dir):
    proc = VLProcessor.from_pretrained(tiny_dir)
    text = '<think>I see a red circle.</think><answer>[{"bbox_2d":[4,4,25,25],"point_2d":[14,14]}]</answer>'
    ids, starts = proc.completion_tokens(text)
    assert ids == proc.completion_ids([text])[0]  # the tokenization a rollout of this text has
    ends = starts[1:] + [len(text)]
    for token, start, end in zip(ids[:-1], starts, ends):
        assert proc.tokenizer.decode([token]) == text[start:end]
    # The seam of two pieces is not a token boundary here: tokenizing in pieces would differ.
    seam = text.index("<answer>")
    assert seam not in starts
    think, answer = text[:seam], text[seam:]
    assert ids != proc.completion_ids([think])[0][:-1] + proc.completion_ids([answer])[0]
