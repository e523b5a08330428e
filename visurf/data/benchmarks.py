"""The evaluation sets' schema (VisionReasoner's benchmarks on the hub), read a batch at a time.

Columns: `image` (at its original size), `text` (the referring expression or question), `mask` (the
label: a dense H x W nested list of booleans at the image's size), `image_id`, `ann_id`,
`img_height`, `img_width`, and optionally `bbox` (the label box [x1, y1, x2, y2] in original
pixels, `[]` where there is no target). Split `test`. docs/evaluation.md has the protocol.

Rows are decoded per batch (an evaluation set's masks take about a byte a pixel), each row's
problems reported by its ids. The question is the text as the released evaluation driver
passes it on: lower-cased, with '.', '"', '?' and '!' stripped from both ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from visurf.data.dataset import ON_BAD_ROW, frame_size
from visurf.data.errors import BadRowError, DataError
from visurf.data.images import decode_image, resize_image
from visurf.data.prompt import build_prompt
from visurf.evaluation.protocol import NO_BBOX_COLUMN

_log = logging.getLogger(__name__)

COLUMNS = ("image", "text", "mask", "image_id", "ann_id")  # img_height / img_width: checked when present
QUESTION_STRIP = '."?!'


@dataclass
class BenchmarkItem:
    index: int  # the row's position in the split
    image_id: str
    ann_id: str
    text: str
    question: str  # as the released driver passes it to the model: lower-cased, '."?!' stripped
    prompt: str
    original: Image.Image  # RGB at its original size: what SAM2 segments, what boxes map back to
    image: Image.Image  # resized to the model frame
    mask: np.ndarray  # [H, W] bool label at the original size
    bbox: object  # the row's bbox ([x1, y1, x2, y2], [] or None), or NO_BBOX_COLUMN

    @property
    def row_id(self) -> str:
        return f"{self.image_id}/{self.ann_id}"


def is_benchmark(ds) -> bool:
    """Whether a dataset has the evaluation sets' columns (a label `mask` and a `text`) rather
    than visurf's training schema (`problem`, `solution`)."""
    names = set(ds.column_names)
    return {"text", "mask"} <= names and "solution" not in names


def check_columns(ds) -> None:
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise DataError(
            f"the evaluation set lacks column(s) {missing}: its columns are image, text, mask, image_id, "
            f"ann_id, img_height, img_width and optionally bbox; it has {ds.column_names}"
        )


def question_of(text: str) -> str:
    return text.lower().strip(QUESTION_STRIP)


def benchmark_batches(
    ds,
    frame,
    template: str,
    batch_size: int,
    on_bad_row: str = "error",
    logger: logging.Logger | None = None,
    skipped: list | None = None,
) -> Iterator[list[BenchmarkItem]]:
    """The rows as BenchmarkItems, `batch_size` at a time, decoded as they are reached.

    `on_bad_row="error"` raises BadRowError on the first malformed row; `"skip"` logs it and
    appends its id to `skipped`.
    """
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {list(ON_BAD_ROW)}, got {on_bad_row!r}")
    check_columns(ds)
    size = frame_size(frame)
    build_prompt("", template)  # a bad template fails before any row is read
    has_bbox = "bbox" in ds.column_names
    rows = ds.with_format("arrow")
    log = logger or _log
    for start in range(0, len(ds), batch_size):
        table = rows[start : start + batch_size]
        records = table.drop_columns(["mask"]).to_pylist()
        masks = table.column("mask")
        batch = []
        for offset, row in enumerate(records):
            index = start + offset
            try:
                batch.append(_item(index, row, masks[offset], has_bbox, size, template))
            except BadRowError as err:
                if on_bad_row == "error":
                    raise
                log.warning("skipping %s", err)
                if skipped is not None:
                    skipped.append(err.row_id)
        if batch:
            yield batch


def _item(
    index: int, row: dict, mask, has_bbox: bool, frame: tuple[int, int], template: str
) -> BenchmarkItem:
    row_id = f"{row.get('image_id')}/{row.get('ann_id')} (row {index})"
    try:
        text = row["text"]
        if not isinstance(text, str) or not question_of(text).strip():
            raise ValueError(f"text is empty or not a string: {text!r}")
        image = decode_image(row["image"])
        label = mask_array(mask)
        if label.shape != (image.height, image.width):
            raise ValueError(
                f"the mask is {label.shape[1]}x{label.shape[0]} but the image is {image.width}x{image.height}"
            )
        _check_declared_size(row, image)
        bbox = _bbox(row.get("bbox")) if has_bbox else NO_BBOX_COLUMN
    except ValueError as err:
        raise BadRowError(row_id, str(err)) from None
    question = question_of(text)
    return BenchmarkItem(
        index=index,
        image_id=str(row["image_id"]),
        ann_id=str(row["ann_id"]),
        text=text,
        question=question,
        prompt=build_prompt(question, template),
        original=image,
        image=resize_image(image, frame),
        mask=label,
        bbox=bbox,
    )


def mask_array(value) -> np.ndarray:
    """A [H, W] bool array from one row's nested list (an arrow list of lists; nonzero is True)."""
    if not value.is_valid:
        raise ValueError("mask is missing")
    rows = value.values
    lengths = rows.value_lengths()
    if len(rows) == 0 or rows.null_count or lengths.null_count:
        raise ValueError("mask is empty or has missing rows")
    widths = set(lengths.to_numpy().tolist())
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f"mask rows have different or zero lengths: {sorted(widths)[:5]}")
    flat = rows.flatten()
    if flat.null_count:
        raise ValueError("mask has missing values")
    values = flat.to_numpy(zero_copy_only=False)
    if values.dtype == object:
        raise ValueError("mask values are not booleans or numbers")
    return values.astype(bool).reshape(len(rows), widths.pop())


def _check_declared_size(row: dict, image: Image.Image) -> None:
    for key, actual in (("img_width", image.width), ("img_height", image.height)):
        value = row.get(key)
        if value is not None and value != actual:
            raise ValueError(f"{key} is {value!r} but the image is {image.width}x{image.height}")


def _bbox(value):
    """The row's label box: 4 finite numbers, `[]` (no target) or None (kept: it scores no hit)."""
    if value is None or value == []:
        return value
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        )
    ):
        raise ValueError(f"bbox must be [x1, y1, x2, y2] or [], got {value!r}")
    return value
