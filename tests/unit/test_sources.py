"""Where a run's data comes from: split files, a save_to_disk folder, a hub id in the local caches."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.replica_layouts import (
    HUB_ID,
    hub_snapshot,
    prepared_cache,
    replica_splits,
    saved_to_disk,
    split_files,
)
from visurf.data.errors import DataError
from visurf.data.hub_cache import HubDatasetMissing
from visurf.data.sources import load_examples, open_split, parse_split


@pytest.fixture(scope="module")
def splits():
    return replica_splits(num_train=6, num_test=3)


def _cfg(**data) -> object:
    base = {
        "source": "local",
        "path": None,
        "image_root": None,
        "on_bad_row": "error",
        "prompt_template": None,
    }
    return OmegaConf.create({**base, **data})


def _ids(ds) -> list[str]:
    return list(ds["id"])


def test_split_names_and_row_ranges():
    assert parse_split("train") == ("train", None)
    assert parse_split("train[:256]") == ("train", slice(None, 256))
    assert parse_split("train[-50:]") == ("train", slice(-50, None))
    assert parse_split("test[10:20]") == ("test", slice(10, 20))
    with pytest.raises(DataError, match=r"NAME\[start:stop\]"):
        parse_split("train[:x]")


def test_split_files_and_save_to_disk_read_alike(tmp_path, splits):
    files = split_files(tmp_path / "files", splits)
    saved = saved_to_disk(tmp_path / "saved", splits)
    for folder in (files, saved):
        assert _ids(open_split(_cfg(path=str(folder)), "train")) == [f"vr{i:05d}" for i in range(6)]
        assert _ids(open_split(_cfg(path=str(folder)), "test[1:]")) == ["vr00007", "vr00008"]
        examples = load_examples(_cfg(path=str(folder)), 112, "train[:2]")
        assert [(e.original_width, e.original_height) for e in examples] == [(640, 480), (480, 640)]
    with pytest.raises(DataError, match=r"no 'val' split in .*saved.*it has \['test', 'train'\]"):
        open_split(_cfg(path=str(saved)), "val")
    one = tmp_path / "one"
    splits["train"].save_to_disk(str(one))
    with pytest.raises(DataError, match="one Dataset written by save_to_disk, not a DatasetDict"):
        open_split(_cfg(path=str(one)), "train")


@pytest.mark.parametrize("layout", [hub_snapshot, prepared_cache])
def test_a_hub_id_is_read_from_either_local_cache(tmp_path, monkeypatch, splits, layout):
    home = layout(tmp_path / "hf", splits)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    cfg = _cfg(source="hub", hub_id=HUB_ID)
    assert _ids(open_split(cfg, "train[-2:]")) == ["vr00004", "vr00005"]
    assert len(open_split(cfg, "test")) == 3
    with pytest.raises(DataError, match="no 'val' split"):
        open_split(cfg, "val")


def test_a_missing_hub_dataset_names_where_it_looked_and_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    with pytest.raises(HubDatasetMissing) as info:
        open_split(_cfg(source="hub", hub_id="Someone/absent_set"), "train")
    message = str(info.value)
    assert str(tmp_path / "hub") in message and str(tmp_path / "datasets") in message
    assert "huggingface-cli download --repo-type dataset Someone/absent_set" in message
    assert "datasets.load_dataset('Someone/absent_set')" in message
    with pytest.raises(DataError, match="OWNER/NAME"):
        open_split(_cfg(source="hub", hub_id="no-owner"), "train")
