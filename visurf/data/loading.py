"""Loading a ViSurf-schema split (parquet, arrow, or jsonl + image files) from local disk."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from visurf.data.errors import BadRowError, DataError

log = logging.getLogger(__name__)

_FORMATS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json"}


def load_split(path_or_files, *, split: str = "train", image_root=None, cache_dir=None, on_bad_row="error"):
    """A `datasets.Dataset` with the rows of one split.

    `path_or_files` is a data file, a list of data files, or a folder holding `{split}.parquet`,
    `{split}.arrow` or `{split}.jsonl` (or shards `{split}-*.<ext>`). Image paths stored as strings (in
    `image`, or in the lists of `images`) are made absolute against `image_root`, by default the folder of the (first) data file. A `.jsonl`
    line that is not a JSON object is a bad row: `on_bad_row="error"` raises BadRowError naming
    the file and line, `"skip"` leaves it out and logs the count.
    """
    import datasets

    files = _data_files(path_or_files, split)
    formats = {_FORMATS.get(f.suffix.lower()) for f in files}
    if None in formats or len(formats) != 1:
        raise DataError(f"data files must all be one of {sorted(_FORMATS)}, got {[str(f) for f in files]}")
    if all(f.suffix.lower() == ".jsonl" for f in files):
        ds = datasets.Dataset.from_list(same_columns(read_jsonl(files, on_bad_row)))
    else:
        ds = datasets.load_dataset(
            formats.pop(), data_files=[str(f) for f in files], split="train", cache_dir=cache_dir
        )
    root = Path(image_root) if image_root is not None else files[0].parent
    if _holds_paths(ds.features.get("image")):
        ds = ds.map(lambda row: {"image": _resolve(row["image"], root)}, keep_in_memory=True)
    listed = ds.features.get("images")
    if _holds_paths(getattr(listed, "feature", None)):
        ds = ds.map(
            lambda row: {
                "images": None if row["images"] is None else [_resolve(p, root) for p in row["images"]]
            },
            keep_in_memory=True,
        )
    return ds


def _holds_paths(feature) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def read_jsonl(files: list[Path], on_bad_row: str = "error") -> list[dict]:
    """The JSON objects of jsonl files, line by line (datasets' own reader fails the whole file
    on one bad line). Blank lines are ignored."""
    rows, skipped = [], 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError(f"the line holds a JSON {type(row).__name__}, not an object")
                except ValueError as err:  # json.JSONDecodeError is a ValueError
                    bad = BadRowError(f"{path.name} line {number}", f"not a JSON object ({err})")
                    if on_bad_row != "skip":
                        raise bad from None
                    log.warning("skipping %s", bad)
                    skipped += 1
                    continue
                rows.append(row)
    if skipped:
        log.warning("skipped %d malformed jsonl lines", skipped)
    return rows


def same_columns(rows: list[dict]) -> list[dict]:
    """Every row with every column any row has (null where it has none): `Dataset.from_list`
    takes its columns from the first row alone, and rows of a mixed file differ (`image` in
    one, `images` in another)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [row if len(row) == len(columns) else {c: row.get(c) for c in columns} for row in rows]


def _data_files(path_or_files, split: str) -> list[Path]:
    if isinstance(path_or_files, (str, os.PathLike)):
        path = Path(path_or_files)
        if path.is_dir():
            return _find_split(path, split)
        paths = [path]
    else:
        paths = [Path(p) for p in path_or_files]
        if not paths:
            raise ValueError("no data files given")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"data file(s) not found: {missing}")
    return paths


def _find_split(folder: Path, split: str) -> list[Path]:
    exts = (".parquet", ".arrow", ".jsonl", ".json")
    for ext in exts:
        if (folder / f"{split}{ext}").is_file():
            return [folder / f"{split}{ext}"]
    for ext in exts:
        shards = sorted(folder.glob(f"{split}-*{ext}"))
        if shards:
            return shards
    looked = ", ".join(f"{split}{e}" for e in exts)
    raise FileNotFoundError(f"no '{split}' split in {folder}: looked for {looked} and {split}-*.<ext> shards")


def _resolve(image, root: Path):
    if not image or os.path.isabs(image):
        return image
    return str(root / image)
