"""SAM2 masks through transformers' Sam2Model: a tiny random SAM2 built and saved locally, loaded
offline, prompted with each object's box and point as the released evaluation prompts it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from visurf.models.sam2_processing import Sam2ImageProcessorTorch, load_sam2_processor
from visurf.models.segmenter import Sam2Segmenter
from visurf.models.tiny_sam2 import SIDE, tiny_sam2_dir

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.fixture(scope="module")
def sam2_dir(visurf_cache):
    return tiny_sam2_dir("image")


@pytest.fixture(scope="module")
def segmenter(sam2_dir):
    return Sam2Segmenter.from_pretrained(sam2_dir)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8))


BOXES = [[10, 20, 200, 250], [300, 40, 480, 290], [150, 100, 260, 180]]
POINTS = [[100, 100], [400, 150], [200, 140]]


def object_mask(segmenter, image, box, point) -> np.ndarray:
    """One object's mask worked out step by step: its own forward pass, the proposal with the
    highest predicted IoU, upsampled to the image and thresholded at 0."""
    inputs = segmenter.processor(
        images=[image],
        input_points=[[[point]]],
        input_labels=[[[1]]],
        input_boxes=[[box]],
        return_tensors="pt",
    )
    with torch.no_grad():
        out = segmenter.model(
            pixel_values=inputs["pixel_values"],
            input_points=inputs["input_points"],
            input_labels=inputs["input_labels"],
            input_boxes=inputs["input_boxes"],
        )
    assert out.pred_masks.shape == (1, 1, 3, SIDE // 4, SIDE // 4)  # three proposals (multimask)
    best = int(out.iou_scores[0, 0].argmax())
    logits = out.pred_masks[0, 0, best][None, None]
    up = torch.nn.functional.interpolate(
        logits, (image.height, image.width), mode="bilinear", align_corners=False
    )
    return (up[0, 0] > 0).numpy()


def test_the_answer_mask_is_the_or_of_each_object_s_best_proposal(segmenter, image):
    combined = segmenter.answer_mask(image, BOXES, POINTS)
    assert combined.shape == (300, 500) and combined.dtype == bool
    singles = [object_mask(segmenter, image, b, p) for b, p in zip(BOXES, POINTS)]
    assert np.array_equal(combined, np.logical_or.reduce(singles))
    # Random weights still give different, non-trivial masks per object.
    assert 0 < combined.sum() < combined.size and not np.array_equal(singles[0], singles[1])


def test_objects_prompted_in_several_passes_give_the_same_mask(sam2_dir, segmenter, image):
    few_at_a_time = Sam2Segmenter.from_pretrained(sam2_dir)
    few_at_a_time.max_objects_per_pass = 2
    assert np.array_equal(
        few_at_a_time.answer_mask(image, BOXES, POINTS), segmenter.answer_mask(image, BOXES, POINTS)
    )


def test_the_released_code_s_empty_cases(segmenter, image):
    empty = np.zeros((300, 500), dtype=bool)
    assert np.array_equal(segmenter.answer_mask(image, [], []), empty)
    # Boxes whose points did not parse: its box-only branch adds nothing.
    assert np.array_equal(segmenter.answer_mask(image, BOXES, []), empty)


def test_prompts_are_scaled_to_the_input_square(segmenter, image):
    inputs = segmenter.processor(
        images=[image],
        input_points=[[[[250, 150]]]],
        input_labels=[[[1]]],
        input_boxes=[[[0, 0, 500, 300]]],
        return_tensors="pt",
    )
    assert inputs["pixel_values"].shape == (1, 3, SIDE, SIDE)
    assert inputs["input_boxes"].tolist() == [[[0.0, 0.0, SIDE, SIDE]]]
    assert inputs["input_points"].tolist() == [[[[SIDE / 2, SIDE / 2]]]]
    assert inputs["original_sizes"].tolist() == [[300, 500]]


def test_the_sam2_video_layout_loads_with_its_image_weights(visurf_cache):
    # facebook/sam2-hiera-large is published as a sam2_video checkpoint: its image parts load into Sam2Model.
    from transformers import Sam2VideoModel

    path = tiny_sam2_dir("video")
    segmenter = Sam2Segmenter.from_pretrained(path)
    video = Sam2VideoModel.from_pretrained(str(path)).state_dict()
    ours = segmenter.model.state_dict()
    assert ours.keys() <= video.keys() and all(torch.equal(ours[k], video[k]) for k in ours)


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no SAM2 model"):
        Sam2Segmenter.from_pretrained(tmp_path)


def test_preprocessing_by_hand():
    processor = Sam2ImageProcessorTorch(size={"height": 8, "width": 8})
    # A flat image stays flat through the resize: (v - 255 * mean) / (255 * std) per channel.
    flat = Image.new("RGB", (20, 10), (200, 100, 50))
    pixels = processor([flat], return_tensors="pt")["pixel_values"]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (torch.tensor([200.0, 100.0, 50.0]) - mean * 255) / (std * 255)
    assert pixels.shape == (1, 3, 8, 8) and torch.allclose(pixels[0, :, 3, 3], expected, atol=1e-6)
    # The uint8 kernel and the float one (rounded back) agree to one level at most.
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.integers(0, 256, (3, 37, 53), dtype=np.uint8))
    native = processor.resize(image).int()
    by_float = torch.nn.functional.interpolate(image[None].float(), (8, 8), mode="bilinear", antialias=True)
    assert (native - by_float[0].round().int()).abs().max() <= 1


def test_masks_are_upsampled_to_the_original_size():
    processor = Sam2ImageProcessorTorch()
    logits = torch.tensor([[[[-1.0, 1.0], [1.0, -1.0]]]])  # one object, one proposal, 2 x 2
    up = processor.post_process_masks([logits], [[4, 6]])[0]
    assert up.shape == (1, 1, 4, 6) and up.dtype == torch.bool
    assert up[0, 0].tolist() == [
        [False] * 3 + [True] * 3,
        [False] * 3 + [True] * 3,
        [True] * 3 + [False] * 3,
        [True] * 3 + [False] * 3,
    ]


@pytest.mark.skipif(
    not HAS_TORCHVISION, reason="torchvision is not installed: the stock Sam2ImageProcessor cannot run"
)
def test_the_same_preprocessing_as_the_stock_image_processor(sam2_dir, image):
    from transformers import Sam2ImageProcessor

    ours = load_sam2_processor(sam2_dir, prefer_stock=False)
    stock = Sam2ImageProcessor(size={"height": SIDE, "width": SIDE})
    assert torch.equal(
        ours.image_processor([image], return_tensors="pt")["pixel_values"],
        stock([image], return_tensors="pt")["pixel_values"],
    )
    logits = torch.randn(1, 2, 3, SIDE // 4, SIDE // 4)
    expected = stock.post_process_masks([logits[0].clone()], [[300, 500]])[0]
    assert torch.equal(
        ours.image_processor.post_process_masks([logits[0].clone()], [[300, 500]])[0], expected
    )
