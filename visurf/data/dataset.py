"""Turning ViSurf-schema rows into model-ready examples: image in the model frame, labels scaled with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from visurf.data.errors import BadRowError, DataError
from visurf.data.images import decode_image, resize_image
from visurf.data.labels import check_in_image, parse_solution, scale_objects
from visurf.data.loading import load_split
from visurf.data.prompt import PROMPT_TEMPLATE, build_prompt
from visurf.rewards.parsing import format_answer

__all__ = [
    "BadRowError",
    "DataError",
    "Example",
    "collate_examples",
    "load_split",
    "prepare_dataset",
    "prepare_example",
]

REQUIRED_COLUMNS = ("id", "problem", "solution", "image")  # img_width/img_height: checked when present
ON_BAD_ROW = ("error", "skip")
_log = logging.getLogger(__name__)


@dataclass
class Example:
    id: str
    problem: str
    prompt: str
    image: Image.Image | None  # RGB, resized to (width, height); None: described, not decoded
    objects: list[dict]  # [{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}] as ints in the model frame
    solution: str  # canonical compact JSON of `objects`
    width: int  # model frame
    height: int
    group: str = "known"
    think: str = ""
    raw_solution: str = ""  # the dataset's own solution string, unchanged
    # The image's original size (img_width x img_height): where answers map back to. In the
    # published convention the stored image is already resized and these keep its size before.
    original_width: int = 0  # 0: the stored image's size
    original_height: int = 0
    index: int = -1  # the row's position in its split (-1: not from a split)

    def to_original(self, text: str):
        """The boxes and points of a completion in original pixels (`MappedAnswer`), scaled as the
        released evaluation scales them (visurf.evaluation.answers)."""
        from visurf.evaluation.answers import map_answer

        ow, oh = self.original_width or self.width, self.original_height or self.height
        return map_answer(text, ow / self.width, oh / self.height)


def frame_size(frame) -> tuple[int, int]:
    """(width, height) from an int (square) or a (width, height) pair."""
    if isinstance(frame, int) and not isinstance(frame, bool):
        frame = (frame, frame)
    if (
        not isinstance(frame, (tuple, list))
        or len(frame) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in frame)
    ):
        raise ValueError(f"frame must be a positive int or a (width, height) pair of them, got {frame!r}")
    return int(frame[0]), int(frame[1])


def prepare_example(row: Mapping, frame, template: str = PROMPT_TEMPLATE) -> Example:
    """Validate one row and bring it into the model frame; raises BadRowError naming the row."""
    build_prompt("", template)  # a bad template is the caller's error, not the row's
    return prepare_row(row, frame_size(frame), template, index=None)


def prepare_row(row: Mapping, frame: tuple[int, int], template: str, index: int | None) -> Example:
    """Row `index` of a split as an Example, image decoded; BadRowError naming it if malformed."""
    row_id = row_name(row, index)
    try:
        example = _build(row, frame, template)
        if index is not None:
            example.index = index
        return example
    except ValueError as err:
        if isinstance(err, BadRowError):
            raise
        raise BadRowError(row_id, str(err)) from None


def row_name(row, index: int | None) -> str:
    """How messages name a row: its id, else its place in the split."""
    if isinstance(row, Mapping) and row.get("id") is not None:
        return str(row["id"])
    return f"#{index} (no id)" if index is not None else "(no id)"


def _build(row: Mapping, frame: tuple[int, int], template: str) -> Example:
    _check_text(row)  # the cheap checks first: a row's text is named before its image is read
    image = decode_image(row["image"])
    example = describe_row(row, image.size, frame, template)
    example.image = resize_image(image, frame)
    return example


def _check_text(row: Mapping) -> tuple[str, list[dict]]:
    if not isinstance(row, Mapping):
        raise ValueError(f"row is a {type(row).__name__}, not a mapping of column to value")
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"missing required column(s) {missing}")
    if row["id"] is None:
        raise ValueError("id is missing")
    problem = row["problem"]
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError(f"problem is empty or not a string: {problem!r}")
    return problem, parse_solution(row["solution"])


def describe_row(row: Mapping, stored: tuple[int, int], frame: tuple[int, int], template: str) -> Example:
    """A row as an Example without its image (`image` None), given the stored image's size:
    everything but decoding, so it can run over a whole split up front. ValueError says why."""
    problem, objects = _check_text(row)
    original = original_size(row)
    # Labels are in the stored image's pixels (Seg-Zero's convention: docs/data.md).
    check_in_image(objects, stored[0], stored[1])
    scaled = scale_objects(objects, tuple(stored), frame)
    raw = row["solution"]
    return Example(
        id=str(row["id"]),
        problem=problem.strip(),
        prompt=build_prompt(problem, template),
        image=None,
        objects=scaled,
        solution=format_answer(scaled),
        width=frame[0],
        height=frame[1],
        group=row.get("group") or "known",
        think=row.get("think") or "",
        raw_solution=raw if isinstance(raw, str) else json.dumps(raw),
        original_width=original[0] or stored[0],
        original_height=original[1] or stored[1],
    )


def original_size(row: Mapping) -> tuple[int, int]:
    """(img_width, img_height): the image's original size, 0 where the row does not say.

    Seg-Zero's data preparation (and the ViSurf and VisionReasoner training sets made with it)
    stores the image resized to 840 x 840 with the labels in that frame, and records the size
    before resizing here; visurf's own rows record the stored size. Either way it is where an
    answer maps back to, never the frame the labels are read in.
    """
    size = []
    for key in ("img_width", "img_height"):
        value = row.get(key)
        if value is None:
            size.append(0)
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != int(value)
            or value <= 0
        ):
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
        size.append(int(value))
    return size[0], size[1]


def prepare_dataset(
    ds,
    frame,
    template: str = PROMPT_TEMPLATE,
    on_bad_row: str = "error",
    logger: logging.Logger | None = None,
) -> tuple[list[Example], int]:
    """All rows as Examples, and how many were skipped.

    `on_bad_row="error"` raises on the first malformed row; `"skip"` logs each one (id and reason)
    and a total. A non-empty dataset in which every row is malformed raises either way.
    """
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {list(ON_BAD_ROW)}, got {on_bad_row!r}")
    size = frame_size(frame)
    build_prompt("", template)  # a bad template fails before any row is read
    log = logger or _log
    rows = _undecoded(ds)
    examples, bad, first_error, total = [], 0, None, 0
    for index, row in enumerate(rows):
        total += 1
        try:
            examples.append(prepare_row(row, size, template, index))
        except BadRowError as err:
            if on_bad_row == "error":
                raise
            bad += 1
            first_error = first_error or err
            log.warning("skipping %s", err)
    if bad:
        log.warning("skipped %d of %d rows as malformed", bad, total)
    if total and not examples:
        raise DataError(f"all {total} rows are malformed; the first: {first_error}")
    report_duplicate_ids((e.id for e in examples), log)
    return examples, bad


def report_duplicate_ids(ids, log: logging.Logger) -> int:
    """Warn about rows whose id an earlier row has (messages and samples name rows by id, so
    these are ambiguous; evaluation keys outcomes by position, so nothing is merged). Returns
    their count."""
    seen: set[str] = set()
    repeated: list[str] = []
    for row_id in ids:
        if row_id in seen:
            repeated.append(row_id)
        seen.add(row_id)
    if repeated:
        shown = ", ".join(repr(i) for i in dict.fromkeys(repeated[:5]))
        log.warning(
            "%d rows repeat the id of an earlier row (e.g. %s): ids should name one row each",
            len(repeated),
            shown,
        )
    return len(repeated)


def _undecoded(ds):
    # Decode images ourselves, so an unreadable one becomes a BadRowError naming its row.
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        return ds
    if isinstance(ds, datasets.DatasetDict):
        raise TypeError(f"expected one split (a Dataset), got a DatasetDict with splits {list(ds)}")
    if isinstance(ds, datasets.Dataset):
        feature = ds.features.get("image")
        if isinstance(feature, datasets.Image) and feature.decode:
            return ds.cast_column("image", datasets.Image(decode=False))
    return ds


def collate_examples(batch: list[Example]) -> list[Example]:
    """Keep the batch as a list: the model's processor builds the tensors."""
    return list(batch)
