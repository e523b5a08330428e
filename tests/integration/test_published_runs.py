"""Runs on a replica of the published training sets' convention (images stored resized, labels in
that frame, img_width / img_height the original size), held the ways users hold their data."""

from __future__ import annotations

import pytest

from tests.replica_layouts import HUB_ID, hub_snapshot, replica_splits, saved_to_disk, split_files


@pytest.fixture(scope="module")
def splits():
    return replica_splits(num_train=8, num_test=4, stored=224)


@pytest.fixture(scope="module")
def files(tmp_path_factory, splits):
    return split_files(tmp_path_factory.mktemp("replica") / "files", splits)


def _trained(summary: dict) -> None:
    assert summary["steps"] == 2 and summary["eval_after"]["num_examples"] == 4
    assert summary["eval_before"]["num_examples"] == 4


@pytest.mark.parametrize("objective", ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"])
def test_every_objective_trains_on_split_files(smoke_run, files, objective):
    _, summary = smoke_run(f"objective={objective}", "data=local", f"data.path={files}")
    _trained(summary)


def test_visurf_trains_on_a_save_to_disk_folder(smoke_run, tmp_path, splits):
    saved = saved_to_disk(tmp_path / "saved", splits)
    _, summary = smoke_run("objective=visurf", "data=local", f"data.path={saved}")
    _trained(summary)


def test_visurf_trains_on_a_hub_id_in_the_local_cache(smoke_run, tmp_path, splits, monkeypatch):
    home = hub_snapshot(tmp_path / "hf", splits)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    _, summary = smoke_run(
        "objective=visurf", "data=hub", f"data.hub_id={HUB_ID}", "data.train_split='train[:6]'"
    )
    _trained(summary)
