"""A split's rows as examples decoded one at a time: memory that does not grow with the rows.

`SplitRows` keeps the split memory-mapped (HF `datasets`' arrow files) and, per item, reads one
row, decodes its images (`image`, or the list `images`: visurf.data.row_images) and resizes them
to the model frame. Before the first step `check_split` runs the cheap checks over the whole
split without decoding any image: the columns, each row's id, problem, solution, image markers,
its original size, and its labels against the stored images' sizes, read from their headers. A bad row found there follows `data.on_bad_row` at once; an
image that fails to decode later follows it when it is met (`skip`: the row is left out and
counted, `error`: BadRowError naming it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from visurf.data.dataset import (
    ON_BAD_ROW,
    REQUIRED_COLUMNS,
    BadRowError,
    DataError,
    Example,
    describe_row,
    frame_size,
    prepare_row,
    report_duplicate_ids,
    row_name,
)
from visurf.data.images import image_size
from visurf.data.prompt import build_prompt
from visurf.data.row_images import IMAGE_COLUMNS, image_label, stored_images

_log = logging.getLogger(__name__)
CHUNK = 512  # rows read at a time by the up-front checks


def undecoded(ds):
    """`ds` with its image columns left as stored ({"bytes", "path"}), so that decoding is ours."""
    import datasets

    feature = ds.features.get("image")
    if isinstance(feature, datasets.Image) and feature.decode:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    listed = ds.features.get("images")
    inner = getattr(listed, "feature", None)  # List(Image()) / Sequence(Image())
    if isinstance(inner, datasets.Image) and inner.decode:
        ds = ds.cast_column("images", type(listed)(datasets.Image(decode=False)))
    return ds


def check_split(ds, frame, template: str, on_bad_row: str = "error", log=None, answer=None):
    """(positions of the usable rows, their stored image sizes (Sizes), rows skipped), with the
    cheap checks run over every row and no image decoded. `answer`: as describe_row's."""
    if on_bad_row not in ON_BAD_ROW:
        raise ValueError(f"on_bad_row must be one of {list(ON_BAD_ROW)}, got {on_bad_row!r}")
    log = log or _log
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if not any(c in ds.column_names for c in IMAGE_COLUMNS):
        missing.append("image (or images)")
    if missing:
        raise DataError(f"the split lacks required column(s) {missing}: it has {ds.column_names}")
    size = frame_size(frame)
    image_columns = [c for c in IMAGE_COLUMNS if c in ds.column_names]
    text_columns = [c for c in ds.column_names if c not in IMAGE_COLUMNS]
    texts, images = ds.select_columns(text_columns), ds.select_columns(image_columns).with_format("arrow")
    positions, sizes, first, bad = [], Sizes(), None, 0
    for start in range(0, len(ds), CHUNK):
        rows = texts[start : start + CHUNK]
        table = images[start : start + CHUNK]
        columns = {name: table.column(name) for name in image_columns}
        for offset in range(len(table)):
            index = start + offset
            row = {name: rows[name][offset] for name in text_columns}
            try:
                stored = _stored_sizes({name: column[offset] for name, column in columns.items()})
                describe_row(row, stored, size, template, answer)  # described, images not read again
            except ValueError as err:
                err = BadRowError(row_name(row, index), str(err))
                if on_bad_row == "error":
                    raise err from None
                bad += 1
                first = first or err
                log.warning("skipping %s", err)
                continue
            positions.append(index)
            sizes.append(stored)
    if bad:
        log.warning("skipped %d of %d rows as malformed", bad, len(ds))
    if len(ds) and not positions:
        raise DataError(f"all {len(ds)} rows are malformed; the first: {first}")
    return np.asarray(positions, dtype=np.int64), sizes.frozen(), bad


def _stored_sizes(values: dict):
    """The stored size of a row's one image, or the list of its images' sizes (its `images`),
    from the arrow values of its image columns; ValueError naming the image that fails."""
    import pyarrow as pa

    row = {}
    for name, value in values.items():
        if not value.is_valid:
            row[name] = None
        elif name == "images":  # a list; anything else is named as it is
            is_list = isinstance(value, (pa.ListScalar, pa.LargeListScalar))
            row[name] = [v if v.is_valid else None for v in value.values] if is_list else value.as_py()
        else:
            row[name] = value
    stored, listed = stored_images(row)
    sizes = []
    for k, value in enumerate(stored):
        try:
            sizes.append(_stored_size(value))
        except ValueError as err:
            raise ValueError(f"{image_label(k, listed)}: {err}" if listed else str(err)) from None
    return sizes if listed else sizes[0]


class Sizes:
    """The stored image sizes of a split's rows, flat: row i's are `flat[starts[i]:starts[i + 1]]`
    ([k, 2]), and `listed[i]` says whether it gave them as a list (`images`) or one `image`."""

    def __init__(self, flat=None, starts=None, listed=None):
        self.flat = [] if flat is None else flat
        self.starts = [0] if starts is None else starts
        self.listed = [] if listed is None else listed

    def append(self, stored) -> None:
        listed = isinstance(stored, list)
        self.flat.extend(stored if listed else [stored])
        self.starts.append(len(self.flat))
        self.listed.append(listed)

    def frozen(self) -> Sizes:
        flat = np.asarray(self.flat, dtype=np.int32).reshape(-1, 2)
        return Sizes(flat, np.asarray(self.starts, dtype=np.int64), np.asarray(self.listed, dtype=bool))

    def __len__(self) -> int:
        return len(self.listed)

    def __getitem__(self, i: int):
        """Row i's stored sizes as describe_row takes them: one (w, h), or a list of them."""
        sizes = [(int(w), int(h)) for w, h in self.flat[self.starts[i] : self.starts[i + 1]]]
        return sizes if self.listed[i] else sizes[0]

    def take(self, keep) -> Sizes:
        """The sizes of rows `keep` (an int array)."""
        parts = [self.flat[self.starts[i] : self.starts[i + 1]] for i in keep]
        counts = np.asarray([len(p) for p in parts], dtype=np.int64)
        flat = np.concatenate(parts).reshape(-1, 2) if parts else np.zeros((0, 2), dtype=np.int32)
        return Sizes(flat.astype(np.int32), np.concatenate([[0], np.cumsum(counts)]), self.listed[keep])


def _stored_size(value) -> tuple[int, int]:
    """The stored image's size from an arrow value: a struct of bytes and path, bytes or a path."""
    import pyarrow as pa

    if not value.is_valid:
        raise ValueError("image is missing")
    if isinstance(value, pa.StructScalar):
        data, path = value["bytes"], value["path"]
        if data.is_valid:
            return image_size(data.as_buffer())  # zero-copy: only the header is read
        return image_size({"path": path.as_py()} if path.is_valid else {})
    if isinstance(value, (pa.StringScalar, pa.LargeStringScalar)):  # a path (subclasses of binary)
        return image_size(value.as_py())
    if isinstance(value, (pa.BinaryScalar, pa.LargeBinaryScalar)):
        return image_size(value.as_buffer())
    return image_size(value.as_py())


class SplitRows:
    """The usable rows of a split as Examples, decoded per item (a map-style dataset).

    `rows[i]` is usable row i with its image in the model frame; `rows[a:b]` and `rows[::k]`
    are SplitRows over those rows. Iterating yields the rows whose images decode; one that does
    not raises BadRowError (`on_bad_row="error"`) or is left out and its id kept in `bad_ids`.
    """

    def __init__(
        self, ds, frame, template: str, on_bad_row: str, positions, sizes, skipped: int = 0, answer=None
    ):
        self.ds, self.frame, self.template, self.on_bad_row = ds, frame_size(frame), template, on_bad_row
        self.positions, self.sizes, self.answer = positions, sizes, answer
        self.skipped_checks = skipped  # rows the up-front checks left out
        self.bad_ids: set[str] = set()  # rows whose image failed to decode when met

    @classmethod
    def open(cls, ds, frame, template: str, on_bad_row: str = "error", log=None, answer=None) -> SplitRows:
        """`answer`: the run's reward's `label_answer` for answer-text labels (None: grounding)."""
        build_prompt("", template)  # a bad template fails before any row is read
        ds = undecoded(ds)
        positions, sizes, skipped = check_split(ds, frame, template, on_bad_row, log, answer)
        rows = cls(ds, frame, template, on_bad_row, positions, sizes, skipped, answer)
        ids = ds.select_columns(["id"]).with_format("arrow")[:].column("id").take(positions)
        report_duplicate_ids((str(i) for i in ids.to_pylist()), log or _log)
        return rows

    @property
    def skipped(self) -> int:
        return self.skipped_checks + len(self.bad_ids)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.subset(range(len(self))[item])
        position = int(self.positions[item])
        return prepare_row(self.ds[position], self.frame, self.template, position, self.answer)

    def subset(self, keep) -> SplitRows:
        """SplitRows over usable rows `keep` (indices into this one)."""
        keep = np.asarray(list(keep), dtype=np.int64)
        rows = SplitRows(
            self.ds,
            self.frame,
            self.template,
            self.on_bad_row,
            self.positions[keep],
            self.sizes.take(keep),
            answer=self.answer,
        )
        rows.skipped_checks, rows.bad_ids = self.skipped_checks, self.bad_ids
        return rows

    def fetch(self, i: int) -> tuple[Example | None, str | None]:
        """(row i, None), or (None, its id) when its image does not decode and bad rows are
        skipped; BadRowError when they are not."""
        try:
            return self[i], None
        except BadRowError as err:
            if self.on_bad_row == "error":
                raise
            if err.row_id not in self.bad_ids:
                _log.warning("skipping %s", err)
            self.bad_ids.add(err.row_id)
            return None, err.row_id

    def __iter__(self) -> Iterator[Example]:
        for i in range(len(self)):
            example, _ = self.fetch(i)
            if example is not None:
                yield example

    def described(self) -> Iterator[Example]:
        """Every usable row without its image (for counting tokens and ids), read in chunks."""
        columns = [c for c in self.ds.column_names if c not in IMAGE_COLUMNS]
        texts = self.ds.select_columns(columns)
        for start in range(0, len(self), CHUNK):
            chunk = self.positions[start : start + CHUNK]
            rows = texts.select(chunk.tolist())[:]
            for offset, position in enumerate(chunk.tolist()):
                row = {name: rows[name][offset] for name in columns}
                stored = self.sizes[start + offset]
                example = describe_row(row, stored, self.frame, self.template, self.answer)
                example.index = position
                yield example
