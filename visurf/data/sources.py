"""The data of a run: the synthetic world (cached as parquet) or a local ViSurf-schema dataset."""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock

from visurf.data.dataset import DataError, load_split, prepare_dataset
from visurf.data.prompt import PROMPT_TEMPLATE
from visurf.data.synth import write_split, write_splits
from visurf.data.synth_config import world_config
from visurf.io.cache import cache_dir, recipe_key

log = logging.getLogger(__name__)

SOURCES = ("synth", "local")  # data.source


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


def data_path(data_cfg) -> tuple[Path, Path | None]:
    if data_cfg.source == "synth":
        return synth_dir(dict(data_cfg.synth)), None
    if data_cfg.source == "local":
        return Path(data_cfg.path).expanduser(), data_cfg.get("image_root")
    raise ValueError(f"data.source must be one of {list(SOURCES)}, got {data_cfg.source!r}")


def load_examples(data_cfg, frame: int, split: str, limit: int | None = None) -> list:
    """Examples of one split, images in the model frame; bad rows handled per data.on_bad_row."""
    path, image_root = data_path(data_cfg)
    ds = load_split(path, split=split, image_root=image_root, on_bad_row=data_cfg.on_bad_row)
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    template = data_cfg.get("prompt_template") or PROMPT_TEMPLATE
    examples, skipped = prepare_dataset(ds, frame, template, on_bad_row=data_cfg.on_bad_row, logger=log)
    if skipped:
        log.warning("%s split: skipped %d malformed rows", split, skipped)
    if not examples:
        raise DataError(f"the {split} split of {path} has no usable rows")
    return examples
