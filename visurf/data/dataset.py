"""Turning ViSurf-schema rows into model-ready examples: images in the model frame, labels scaled with them.

A row has one image (`image`), a list of them (`images`, `[]` for a text-only row:
visurf.data.row_images), and a solution read as the run's reward reads labels: boxes and points
in each image's own frame (grounding, visurf.data.labels), or an answer text
(`label_answer`, visurf.rewards.registry).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from visurf.data.errors import BadRowError, DataError
from visurf.data.images import decode_image, resize_image
from visurf.data.labels import check_in_images, parse_solution, scale_to_frame
from visurf.data.loading import load_split
from visurf.data.prompt import PROMPT_TEMPLATE, build_prompt
from visurf.data.row_images import check_markers, image_label, stored_images
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

# and `image` or `images` (visurf.data.row_images); img_width/img_height: checked when present
REQUIRED_COLUMNS = ("id", "problem", "solution")
ON_BAD_ROW = ("error", "skip")
_log = logging.getLogger(__name__)


@dataclass
class Example:
    id: str
    problem: str
    prompt: str
    # RGB, resized to (width, height): one image (the `image` column), or a list ([]: text-only);
    # None (or a list of Nones): described, not decoded
    image: Image.Image | list | None
    # [{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}] as ints in the model frame, with
    # "image": k where the row has several images; [] for an answer-text label
    objects: list[dict]
    solution: str  # the label's answer as the policy writes it: canonical compact JSON of `objects`, or the answer text
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
    # Each image's original size, for a row with several images (original_width/height: the first's)
    original_sizes: tuple[tuple[int, int], ...] = ()

    def to_original(self, text: str):
        """The boxes and points of a completion in original pixels (`MappedAnswer`), scaled as the
        released evaluation scales them (visurf.evaluation.answers); with several images, each
        element by the size of the image it names (`"image": k`)."""
        from visurf.evaluation.answers import map_answer

        if self.original_sizes:
            factors = [(ow / self.width, oh / self.height) for ow, oh in self.original_sizes]
            return map_answer(text, *factors[0], per_image=factors)
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


def prepare_example(row: Mapping, frame, template: str = PROMPT_TEMPLATE, answer=None) -> Example:
    """Validate one row and bring it into the model frame; raises BadRowError naming the row.
    `answer`: how the run's reward reads an answer-text label (None: grounding; describe_row)."""
    build_prompt("", template)  # a bad template is the caller's error, not the row's
    return prepare_row(row, frame_size(frame), template, index=None, answer=answer)


def prepare_row(
    row: Mapping, frame: tuple[int, int], template: str, index: int | None, answer=None
) -> Example:
    """Row `index` of a split as an Example, images decoded; BadRowError naming it if malformed."""
    row_id = row_name(row, index)
    try:
        example = _build(row, frame, template, answer)
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


def _build(row: Mapping, frame: tuple[int, int], template: str, answer) -> Example:
    _check_text(row)  # the cheap checks first: a row's text is named before its images are read
    read_label(row, answer)
    values, listed = stored_images(row)
    images = []
    for k, value in enumerate(values):
        try:
            images.append(decode_image(value))
        except ValueError as err:
            raise ValueError(f"{image_label(k, listed)}: {err}" if listed else str(err)) from None
    sizes = [image.size for image in images]
    example = describe_row(row, sizes if listed else sizes[0], frame, template, answer)
    resized = [resize_image(image, frame) for image in images]
    example.image = resized if listed else resized[0]
    return example


def _check_text(row: Mapping) -> str:
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
    return problem


def read_label(row: Mapping, answer) -> tuple[list[dict] | None, str | None]:
    """(grounding objects in the stored images' frames, None) or (None, the answer text), as the
    run's reward reads labels: `answer` is its `label_answer` (None: grounding)."""
    if answer is None:
        return parse_solution(row["solution"]), None
    return None, answer(row["solution"])


def describe_row(row: Mapping, stored, frame: tuple[int, int], template: str, answer=None) -> Example:
    """A row as an Example without its images, given their stored sizes: everything but decoding,
    so it can run over a whole split up front. ValueError says why.

    `stored`: the (width, height) of the row's one image (`image`), or a list of them, one per
    image of its `images` ([] for a text-only row). `answer`: the run's reward's `label_answer`,
    for labels that are an answer text (None: grounding labels).
    """
    problem = _check_text(row)
    listed = isinstance(stored, list)
    sizes = [tuple(int(v) for v in s) for s in stored] if listed else [tuple(int(v) for v in stored)]
    prompt = build_prompt(problem, template)
    check_markers(prompt, len(sizes))
    originals = original_sizes(row, sizes)
    objects, text = read_label(row, answer)
    if objects is not None:
        # Labels are in each stored image's pixels (Seg-Zero's convention: docs/data.md).
        check_in_images(objects, sizes)
        objects = scale_to_frame(objects, sizes, frame)
        text = format_answer(objects)
    raw = row["solution"]
    first = originals[0] if originals else frame
    return Example(
        id=str(row["id"]),
        problem=problem.strip(),
        prompt=prompt,
        image=[None] * len(sizes) if listed else None,
        objects=objects or [],
        solution=text,
        width=frame[0],
        height=frame[1],
        group=row.get("group") or "known",
        think=row.get("think") or "",
        raw_solution=raw if isinstance(raw, str) else json.dumps(raw),
        original_width=first[0],
        original_height=first[1],
        original_sizes=tuple(originals) if len(originals) > 1 else (),
    )


def original_sizes(row: Mapping, stored: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each image's original size: (img_width, img_height) of a row with one image, a list of
    each for a row with several; the stored size where the row does not say."""
    if len(stored) <= 1:
        if len(stored) == 1 and not isinstance(row.get("img_width"), list):
            width, height = original_size(row)
            return [(width or stored[0][0], height or stored[0][1])]
    sizes = []
    for key in ("img_width", "img_height"):
        value = row.get(key)
        if value is None:
            sizes.append([0] * len(stored))
        elif not isinstance(value, (list, tuple)) or len(value) != len(stored):
            raise ValueError(
                f"{key} of a row with {len(stored)} images is a list of {len(stored)} sizes, got {value!r:.80}"
            )
        else:
            sizes.append([original_size({key: v})[key == "img_height"] for v in value])
    return [(w or s[0], h or s[1]) for w, h, s in zip(*sizes, stored)]


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
