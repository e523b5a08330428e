"""The published training sets' convention (Seg-Zero's data preparation): images stored resized
to 840 x 840, `solution` in that frame, `img_width` / `img_height` the original size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from visurf.data import BadRowError, prepare_dataset, prepare_example
from visurf.data.seg_zero_replica import COLORS, ORIGINAL_SIZES, replica_row


def _object_box(image, color, tol: int = 40) -> list[int] | None:
    """[x1, y1, x2, y2] (exclusive ends) of the pixels of `color` in `image`."""
    pixels = np.asarray(image).astype(int)
    near = (np.abs(pixels - np.array(color)).max(axis=2) <= tol).nonzero()
    if not len(near[0]):
        return None
    return [int(near[1].min()), int(near[0].min()), int(near[1].max()) + 1, int(near[0].max()) + 1]


@pytest.mark.parametrize("frame", [840, 112])
def test_every_label_lands_on_its_object_in_the_model_frame(frame):
    rows = [replica_row(i, stored=840) for i in range(10)]
    examples, skipped = prepare_dataset(rows, frame)
    assert skipped == 0 and len(examples) == 10
    assert {(e.original_width, e.original_height) for e in examples} == set(ORIGINAL_SIZES)
    no_target = [e for e in examples if not e.objects]
    assert len(no_target) == 2 and all(e.solution == "[]" for e in no_target)
    for row, example in zip(rows, examples):
        assert example.image.size == (frame, frame) and (example.width, example.height) == (frame, frame)
        colors = json.loads(row["object_colors"])
        assert len(colors) == len(example.objects)
        for name, obj in zip(colors, example.objects):
            found = _object_box(example.image, COLORS[name])
            # Resizing blurs an edge by up to a pixel of each frame, and labels are rounded.
            slack = 2 + frame / 840 * 2
            assert found is not None and max(abs(a - b) for a, b in zip(found, obj["bbox_2d"])) <= slack, (
                example.id,
                name,
                found,
                obj,
            )
            px, py = obj["point_2d"]
            assert np.abs(np.asarray(example.image)[py, px].astype(int) - COLORS[name]).max() <= 40


def test_the_original_size_is_kept_and_answers_map_back_to_it():
    row = replica_row(1, stored=840)  # original 480 x 640 (portrait)
    example = prepare_example(row, 112)
    assert (example.original_width, example.original_height) == (480, 640)
    # An answer in the 112 frame, scaled by 480/112 and 640/112 with int(v * f + 0.5).
    mapped = example.to_original('<answer>[{"bbox_2d": [10, 20, 56, 100], "point_2d": [30, 55]}]</answer>')
    assert mapped.boxes == [[43, 114, 240, 571]] and mapped.points == [[129, 314]]


def test_rows_whose_sizes_agree_are_unchanged():
    from tests.unit.test_data import _row

    example = prepare_example(_row(), 112)  # 224 x 112, labels in that frame
    assert (example.original_width, example.original_height) == (224, 112)
    assert example.objects == [{"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35]}]
    unsized = _row(img_width=None, img_height=None)
    assert prepare_example(unsized, 112).original_width == 224


def test_a_label_outside_the_stored_image_is_a_bad_row():
    row = replica_row(3, stored=840)  # original 1024 x 576: inside the original, outside 840
    row["solution"] = json.dumps([{"bbox_2d": [800, 10, 1000, 300], "point_2d": [900, 100]}])
    with pytest.raises(
        BadRowError, match=r"vr00003.*bbox_2d \[800, 10, 1000, 300\] is outside the 840x840 image"
    ):
        prepare_example(row, 112)
