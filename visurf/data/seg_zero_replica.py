"""Rows in the published training sets' convention, drawn from scenes of coloured rectangles.

The ViSurf and VisionReasoner training sets on the hub were written by Seg-Zero's data
preparation (`prepare_dataset/gen_training_dataset.py`): each image resized to 840 x 840 without
keeping its aspect ratio, `solution` in that frame (`int(v * 840 / original + 0.5)`), and
`img_width` / `img_height` the size *before* resizing. These rows follow it, for any stored
size, with original images of several shapes and no-target rows (`[]`). Each row also names its
objects' colours (`object_colors`, a column the loader ignores), so a test can check that every
label lands on its object. Used by the tests and `experiments/bench/bench_data.py`.
"""

from __future__ import annotations

import io
import json
import random

from PIL import Image, ImageDraw

# Original sizes (width, height): landscape, portrait, square, wide and tall.
ORIGINAL_SIZES = ((640, 480), (480, 640), (500, 500), (1024, 576), (360, 900))
COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
BACKGROUND = (128, 128, 128)


def _to_stored(v: float, factor: float) -> int:
    return int(v * factor + 0.5)  # the preparation script's rounding


def replica_row(index: int, stored: int = 840, seed: int = 0, image_format: str = "PNG") -> dict:
    """Row `index`: a scene at one of ORIGINAL_SIZES, stored resized to `stored` x `stored`."""
    rng = random.Random(seed * 1_000_003 + index)
    width, height = ORIGINAL_SIZES[index % len(ORIGINAL_SIZES)]
    names = rng.sample(sorted(COLORS), 3)
    count = 0 if index % 4 == 3 else rng.randint(1, 2)  # every fourth row has no target
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    boxes = []
    for slot, name in enumerate(names[:count] if count else names[:1]):
        # Objects in separate vertical bands, so they never overlap.
        x1 = int(width * (0.05 + 0.5 * slot) + rng.random() * width * 0.1)
        x2 = x1 + int(width * (0.2 + 0.15 * rng.random()))
        y1 = int(height * (0.1 + 0.3 * rng.random()))
        y2 = y1 + int(height * (0.2 + 0.3 * rng.random()))
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=COLORS[name])
        boxes.append((name, (x1, y1, x2, y2)))
    fx, fy = stored / width, stored / height
    solution, colors = [], []
    for name, (x1, y1, x2, y2) in boxes[:count]:
        box = [_to_stored(x1, fx), _to_stored(y1, fy), _to_stored(x2, fx), _to_stored(y2, fy)]
        point = [_to_stored((x1 + x2) / 2, fx), _to_stored((y1 + y2) / 2, fy)]
        solution.append({"bbox_2d": box, "point_2d": point})
        colors.append(name)
    asked = " and ".join(colors) if count else names[2]  # a colour not in the picture
    buffer = io.BytesIO()
    image.resize((stored, stored), Image.Resampling.BOX).save(buffer, format=image_format)
    return {
        "id": f"vr{index:05d}",
        "problem": f"the {asked} rectangle" + ("s" if count > 1 else ""),
        "solution": json.dumps(solution),
        "image": {"bytes": buffer.getvalue(), "path": None},
        "img_height": height,
        "img_width": width,
        "object_colors": json.dumps(colors),
    }


def features():
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "problem": datasets.Value("string"),
            "solution": datasets.Value("string"),
            "image": datasets.Image(),
            "img_height": datasets.Value("int64"),
            "img_width": datasets.Value("int64"),
            "object_colors": datasets.Value("string"),
        }
    )


def replica_dataset(
    num_rows: int, stored: int = 840, seed: int = 0, image_format: str = "PNG", cache_dir=None
):
    """`num_rows` rows as a `datasets.Dataset`, written row by row into arrow files under
    `cache_dir` (the datasets cache by default), so memory stays small whatever the count."""
    import datasets

    def rows(num_rows, stored, seed, image_format):
        for index in range(num_rows):
            yield replica_row(index, stored, seed, image_format)

    kwargs = {"num_rows": num_rows, "stored": stored, "seed": seed, "image_format": image_format}
    return datasets.Dataset.from_generator(
        rows, features=features(), gen_kwargs=kwargs, cache_dir=None if cache_dir is None else str(cache_dir)
    )
