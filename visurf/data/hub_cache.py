"""A hub dataset read offline from the local HF caches (`data=hub data.hub_id=OWNER/NAME`).

Two caches can hold it, and both are looked in; nothing is downloaded:
- the hub cache (`huggingface-cli download --repo-type dataset ID`): a snapshot folder of the
  repository's files, `$HF_HUB_CACHE` (default `$HF_HOME/hub`), read like a local folder;
- the datasets cache (`datasets.load_dataset(ID)`): arrow files prepared by `datasets`,
  `$HF_DATASETS_CACHE` (default `$HF_HOME/datasets`), memory-mapped as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from visurf.data.errors import DataError


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()


def hub_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or hf_home() / "hub").expanduser()


def datasets_cache() -> Path:
    return Path(os.environ.get("HF_DATASETS_CACHE") or hf_home() / "datasets").expanduser()


class HubDatasetMissing(DataError):
    """The dataset is in neither local HF cache."""


def check_hub_id(hub_id: str) -> tuple[str, str]:
    owner, sep, name = str(hub_id).partition("/")
    if not sep or not owner or not name or "/" in name:
        raise DataError(f"data.hub_id must be OWNER/NAME, got {hub_id!r}")
    return owner, name


def snapshot_folder(hub_id: str) -> Path | None:
    """The newest snapshot of the dataset repository in the hub cache (the one `refs/main`
    names, when it is there)."""
    owner, name = check_hub_id(hub_id)
    repo = hub_cache() / f"datasets--{owner}--{name}"
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip()
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def prepared_folder(hub_id: str) -> Path | None:
    """The newest folder of arrow files `datasets.load_dataset(ID)` prepared for the dataset:
    `<cache>/<owner>___<name in snake case>/<config>/<version>/<hash>/`."""
    from datasets.naming import camelcase_to_snakecase

    owner, name = check_hub_id(hub_id)
    root = datasets_cache() / f"{owner}___{camelcase_to_snakecase(name)}"
    if not root.is_dir():
        return None
    found = [p.parent for p in root.glob("*/*/*/dataset_info.json") if any(p.parent.glob("*.arrow"))]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def prepared_split_files(folder: Path, split: str) -> list[Path]:
    """`<name>-<split>.arrow` or its shards `<name>-<split>-00000-of-00002.arrow`."""
    shard = re.compile(rf".*-{re.escape(split)}(-\d+-of-\d+)?\.arrow$")
    return sorted(p for p in folder.glob("*.arrow") if shard.fullmatch(p.name))


def missing_message(hub_id: str) -> str:
    return (
        f"data.hub_id={hub_id} is not in the local HF caches (looked in {hub_cache()} for "
        f"datasets--{hub_id.replace('/', '--')} and in {datasets_cache()}); nothing is downloaded. "
        f"On a machine with network, fetch it with `huggingface-cli download --repo-type dataset {hub_id}` "
        f"or `python -c \"import datasets; datasets.load_dataset('{hub_id}')\"`, then copy that cache "
        "here (HF_HOME, HF_HUB_CACHE or HF_DATASETS_CACHE), or save it with save_to_disk and use "
        "data=local data.path=DIR"
    )
