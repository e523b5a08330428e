"""The data of a run and where it is held: the synthetic world, a local folder, a hub dataset.

- `data=synth`: the synthetic world, written once per recipe as parquet under $VISURF_CACHE/data.
- `data=local data.path=DIR`: a folder of split files (`train.parquet`, `test.jsonl`, shards...)
  or a folder written by `DatasetDict.save_to_disk` (Seg-Zero's layout); the layout is detected.
- `data=hub data.hub_id=OWNER/NAME`: a hub dataset read offline from the local HF caches
  (visurf.data.hub_cache).

A split is named by `data.train_split` / `data.test_split`, optionally with a row range as
`datasets` writes it: `train[:256]`, `train[-500:]`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from filelock import FileLock

from visurf.data.errors import DataError
from visurf.data.loading import load_split
from visurf.data.synth import write_split, write_splits
from visurf.data.synth_config import world_config
from visurf.io.cache import cache_dir, recipe_key

log = logging.getLogger(__name__)

SOURCES = ("synth", "local", "hub")  # data.source
_RANGE = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")


def synth_dir(synth_cfg: dict) -> Path:
    """Write the synthetic splits once per recipe under $VISURF_CACHE/data and return the folder."""
    # The validation split's size stays out of the key: it adds a file beside the same train and
    # test splits, which it does not change.
    recipe = {k: synth_cfg[k] for k in sorted(synth_cfg) if k != "num_val"}
    num_val = int(synth_cfg.get("num_val", 0) or 0)
    out = cache_dir() / "data" / f"synth-{recipe_key(recipe)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    world = world_config(recipe)
    with FileLock(str(out) + ".lock"):
        # test.parquet is written last: it marks a complete entry (val.parquet too when asked for).
        if not (out / "test.parquet").exists():
            write_splits(out, recipe["num_train"], recipe["num_test"], recipe["seed"], world, num_val)
        elif num_val and split_rows(out / "val.parquet") != num_val:
            # Another size of validation split was asked for: rewrite it alone. Row i depends on
            # (seed, i) only, so a larger split keeps the smaller one's rows as its first ones.
            write_split(out, "val", num_val, recipe["seed"], world)
    return out


def split_rows(path: Path) -> int | None:
    """Rows in a parquet split (None when the file is missing), read from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None


def parse_split(spec: str) -> tuple[str, slice | None]:
    """`train` -> ("train", None); `train[:256]` -> ("train", slice(None, 256))."""
    spec = str(spec).strip()
    match = _RANGE.match(spec)
    if not match:
        if "[" in spec or "]" in spec:
            raise DataError(f"split {spec!r}: a row range is written NAME[start:stop], e.g. train[:256]")
        return spec, None
    bound = [int(v) if v else None for v in (match["start"], match["stop"])]
    return match["name"], slice(*bound)


def describe(data_cfg) -> str:
    """Where the data comes from, in words (for messages)."""
    if data_cfg.source == "hub":
        return f"data.hub_id={data_cfg.hub_id}"
    if data_cfg.source == "local":
        return str(Path(data_cfg.path).expanduser())
    return "the synthetic world"


def open_split(data_cfg, split: str):
    """One split as a memory-mapped `datasets.Dataset` (nothing decoded), its row range applied."""
    name, rows = parse_split(split)
    if data_cfg.source == "synth":
        ds = load_split(synth_dir(dict(data_cfg.synth)), split=name)
    elif data_cfg.source == "local":
        ds = folder_split(Path(data_cfg.path).expanduser(), name, data_cfg)
    elif data_cfg.source == "hub":
        ds = hub_split(str(data_cfg.hub_id), name, data_cfg)
    else:
        raise ValueError(f"data.source must be one of {list(SOURCES)}, got {data_cfg.source!r}")
    if rows is not None:
        ds = ds.select(range(*rows.indices(len(ds))))
    return ds


def is_saved_dataset_dict(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file()


def folder_split(folder: Path, split: str, data_cfg):
    """A split of a local folder: `save_to_disk` layout when it has dataset_dict.json, else split files."""
    if folder.is_dir() and is_saved_dataset_dict(folder):
        return saved_split(folder, split)
    if folder.is_dir() and (folder / "state.json").is_file():
        raise DataError(
            f"{folder} holds one Dataset written by save_to_disk, not a DatasetDict of splits: save "
            "a DatasetDict({'train': ..., 'test': ...}) or write split files (train.parquet, ...)"
        )
    return load_split(
        folder, split=split, image_root=data_cfg.get("image_root"), on_bad_row=data_cfg.on_bad_row
    )


def saved_split(folder: Path, split: str):
    import datasets

    splits = datasets.load_from_disk(str(folder))
    if split not in splits:
        raise DataError(
            f"no '{split}' split in {folder} (a save_to_disk DatasetDict): it has {sorted(splits)}"
        )
    return splits[split]


def hub_split(hub_id: str, split: str, data_cfg):
    """A split of a hub dataset from the local caches: the hub cache's snapshot first, then the
    arrow files `datasets` prepared."""
    from visurf.data import hub_cache

    snapshot = hub_cache.snapshot_folder(hub_id)
    if snapshot is not None:
        return snapshot_split(snapshot, split, data_cfg)
    prepared = hub_cache.prepared_folder(hub_id)
    if prepared is None:
        raise hub_cache.HubDatasetMissing(hub_cache.missing_message(hub_id))
    files = hub_cache.prepared_split_files(prepared, split)
    if not files:
        names = sorted(p.name for p in prepared.glob("*.arrow"))
        raise DataError(f"data.hub_id={hub_id}: no '{split}' split in {prepared} (its files: {names})")
    import datasets

    parts = [datasets.Dataset.from_file(str(f)) for f in files]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def snapshot_split(snapshot: Path, split: str, data_cfg):
    """A split of a repository snapshot: a save_to_disk folder, or split files at its root, under
    `data/` or under a folder named after the split (the hub's own layouts)."""
    if is_saved_dataset_dict(snapshot):
        return saved_split(snapshot, split)
    for folder in (snapshot, snapshot / "data"):
        try:
            return load_split(folder, split=split, on_bad_row=data_cfg.on_bad_row)
        except FileNotFoundError:
            continue
    files = sorted(p for p in (snapshot / split).rglob("*") if p.suffix in (".parquet", ".arrow"))
    if files:
        return load_split(files, on_bad_row=data_cfg.on_bad_row)
    raise DataError(
        f"no '{split}' split in {snapshot}: looked for {split}.<ext> and {split}-*.<ext> in it and in "
        f"data/, and for files under {split}/"
    )


def open_rows(
    data_cfg,
    frame,
    split: str,
    limit: int | None = None,
    log: logging.Logger | None = None,
    answer=None,
):
    """The usable rows of one split as SplitRows (visurf.data.rows): checked up front, decoded
    per item; bad rows follow data.on_bad_row. `answer`: how the run's reward reads an
    answer-text label (`visurf.rewards.label_answer(cfg.reward.name)`; None: grounding)."""
    from visurf.data.prompt import PROMPT_TEMPLATE
    from visurf.data.rows import SplitRows

    ds = open_split(data_cfg, split)
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    template = data_cfg.get("prompt_template") or PROMPT_TEMPLATE
    rows = SplitRows.open(
        ds, frame, template, on_bad_row=data_cfg.on_bad_row, log=log or globals()["log"], answer=answer
    )
    if rows.skipped:
        (log or globals()["log"]).warning("%s split: skipped %d malformed rows", split, rows.skipped)
    if not len(rows):
        raise DataError(f"the {split} split of {describe(data_cfg)} has no usable rows")
    return rows


def load_examples(data_cfg, frame: int, split: str, limit: int | None = None, answer=None) -> list:
    """Examples of one split, every image decoded now (a list: for a few rows; runs use open_rows)."""
    examples = list(open_rows(data_cfg, frame, split, limit, answer=answer))
    if not examples:
        raise DataError(f"the {split} split of {describe(data_cfg)} has no usable rows")
    return examples
