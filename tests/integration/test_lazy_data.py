"""The lazy data path: rows checked up front without decoding, images decoded per batch, a bad
image met later following data.on_bad_row (counted in summary.json), evaluation on the same path."""

from __future__ import annotations

import pytest

from tests.replica_layouts import replica_splits, split_files
from visurf.data.errors import BadRowError
from visurf.data.prompt import PROMPT_TEMPLATE
from visurf.data.rows import SplitRows


def _truncate(ds, position: int):
    """`ds` with row `position`'s image cut in half: its header reads, its pixels do not."""
    import datasets

    from visurf.data.seg_zero_replica import features

    rows = ds.to_list()
    data = rows[position]["image"]["bytes"]
    rows[position]["image"] = {"bytes": data[: len(data) // 2], "path": None}
    return datasets.Dataset.from_list(rows, features=features())


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    splits = replica_splits(num_train=8, num_test=4, stored=224)
    splits = {"train": _truncate(splits["train"], 2), "test": _truncate(splits["test"], 1)}
    return split_files(tmp_path_factory.mktemp("truncated") / "files", splits)


def test_rows_are_checked_up_front_and_decoded_when_met():
    splits = replica_splits(num_train=6, num_test=1, stored=224)
    ds = _truncate(splits["train"], 2)
    rows = SplitRows.open(ds, 112, PROMPT_TEMPLATE)  # the cheap checks read headers only: all pass
    assert len(rows) == 6 and rows.skipped == 0
    assert rows[0].image.size == (112, 112) and rows[0].index == 0
    assert [e.index for e in rows[1::2]] == [1, 3, 5]
    with pytest.raises(BadRowError, match=r"vr00002.*corrupt image"):
        rows[2]
    lenient = SplitRows.open(ds, 112, PROMPT_TEMPLATE, on_bad_row="skip")
    assert [e.id for e in lenient] == ["vr00000", "vr00001", "vr00003", "vr00004", "vr00005"]
    assert lenient.bad_ids == {"vr00002"} and lenient.skipped == 1


def test_a_bad_label_is_found_before_any_image_is_decoded(monkeypatch):
    import json

    import datasets

    from visurf.data import dataset
    from visurf.data.seg_zero_replica import features

    rows = replica_splits(num_train=4, num_test=1, stored=224)["train"].to_list()
    rows[3]["solution"] = json.dumps([{"bbox_2d": [10, 10, 300, 40], "point_2d": [20, 20]}])
    ds = datasets.Dataset.from_list(rows, features=features())
    monkeypatch.setattr(dataset, "decode_image", lambda value: pytest.fail("an image was decoded"))
    with pytest.raises(BadRowError, match=r"vr00003.*outside the 224x224 image"):
        SplitRows.open(ds, 112, PROMPT_TEMPLATE)


def test_skipped_images_are_counted_in_the_summary(smoke_run, truncated):
    # Two workers decode the batches; every training row is drawn within 4 batches of 2 prompts.
    _, summary = smoke_run(
        "objective=visurf",
        "data=local",
        f"data.path={truncated}",
        "data.on_bad_row=skip",
        "data.num_workers=2",
        "trainer.max_steps=4",
    )
    assert summary["skipped_rows"] == {"train": 1, "test": 1}
    assert summary["eval_after"]["num_examples"] == 3


def test_a_bad_image_met_in_training_stops_the_run_naming_it(smoke_run, truncated):
    with pytest.raises(BadRowError, match=r"vr00002.*corrupt image"):
        smoke_run(
            "objective=sft",
            "data=local",
            f"data.path={truncated}",
            "data.num_workers=1",
            "data.test_split='test[:1]'",
            "trainer.max_steps=4",
        )


def test_epochs_set_the_steps_of_one_pass(tmp_path):
    from tests.conftest import smoke_config
    from visurf.recipes.train import set_steps_for_epochs

    cfg = smoke_config("train.epochs=1", "train.batch_size=4")
    set_steps_for_epochs(cfg, 10)
    assert cfg.trainer.max_steps == 3  # ceil(10 / 4) rollout batches
    cfg = smoke_config("train.epochs=2", "train.batch_size=4", "objective=rlvr", "objective.mu=2")
    set_steps_for_epochs(cfg, 10)
    assert cfg.trainer.max_steps == 10  # ceil(20 / 4) batches, 2 steps each


def test_visurf_eval_skips_a_bad_image_on_the_same_path(truncated):
    from visurf.cli.eval import run_eval

    result = run_eval("base", ["model=tiny", "data=local", f"data.path={truncated}", "data.on_bad_row=skip"])
    assert result["skipped_rows"] == 1 and result["num_examples"] == 3
    assert [o[0] for o in result["outcomes"]] == [0, 2, 3]  # keyed by row in the split
    # Rows 8, 10 and 11 of the replica: original sizes (1024, 576), (640, 480), (480, 640).
    assert [a["original_size"] for a in result["answers"]] == [[1024, 576], [640, 480], [480, 640]]
