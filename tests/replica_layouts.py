"""A replica of the published convention (visurf.data.seg_zero_replica) held the ways users hold
data: split files, a save_to_disk DatasetDict, the hub cache and the datasets cache."""

from __future__ import annotations

import json
from pathlib import Path

HUB_ID = "Replica/ViSurf_multi_non_object_8_size224"


def replica_splits(num_train: int = 8, num_test: int = 4, stored: int = 224) -> dict:
    import datasets

    from visurf.data.seg_zero_replica import features, replica_row

    rows = [replica_row(i, stored) for i in range(num_train + num_test)]
    return {
        "train": datasets.Dataset.from_list(rows[:num_train], features=features()),
        "test": datasets.Dataset.from_list(rows[num_train:], features=features()),
    }


def split_files(folder: Path, splits: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, ds in splits.items():
        ds.to_parquet(str(folder / f"{name}.parquet"))
    return folder


def saved_to_disk(folder: Path, splits: dict) -> Path:
    import datasets

    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder


def hub_snapshot(hf_home: Path, splits: dict, hub_id: str = HUB_ID) -> Path:
    """What `huggingface-cli download --repo-type dataset ID` leaves: parquet shards under data/."""
    owner, name = hub_id.split("/")
    repo = hf_home / "hub" / f"datasets--{owner}--{name}"
    data = repo / "snapshots" / "0123abcd" / "data"
    data.mkdir(parents=True)
    for split, ds in splits.items():
        ds.to_parquet(str(data / f"{split}-00000-of-00001.parquet"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return hf_home


def prepared_cache(hf_home: Path, splits: dict, hub_id: str = HUB_ID) -> Path:
    """What `datasets.load_dataset(ID)` leaves: arrow files in the datasets cache."""
    from datasets.naming import camelcase_to_snakecase

    owner, name = hub_id.split("/")
    snake = camelcase_to_snakecase(name)
    folder = hf_home / "datasets" / f"{owner}___{snake}" / "default" / "0.0.0" / "f00d"
    folder.mkdir(parents=True)
    for split, ds in splits.items():
        saved = hf_home / "tmp" / split
        ds.save_to_disk(str(saved))
        (saved / "data-00000-of-00001.arrow").rename(folder / f"{snake}-{split}.arrow")
    (folder / "dataset_info.json").write_text(json.dumps({"dataset_name": snake}))
    return hf_home
