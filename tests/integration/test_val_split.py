"""The synthetic world's validation split: drawn apart from the test split, chosen on by settings."""

from __future__ import annotations

import pandas as pd


def small(**extra):
    from tests.conftest import smoke_config

    return {**dict(smoke_config().data.synth), "num_train": 16, "num_test": 40, **extra}


def test_val_split_is_written_beside_the_same_test_split(tmp_path, monkeypatch):
    from visurf.data.sources import synth_dir

    # A cache of its own: the shared one may already hold this world's validation split.
    monkeypatch.setenv("VISURF_CACHE", str(tmp_path / "cache"))

    without = synth_dir(small(num_val=0))
    test_before = pd.read_parquet(without / "test.parquet")
    assert not (without / "val.parquet").exists()
    with_val = synth_dir(small(num_val=40))
    assert with_val == without  # the validation size is not part of the data's cache key
    val = pd.read_parquet(with_val / "val.parquet")
    test = pd.read_parquet(with_val / "test.parquet")
    assert len(val) == 40
    pd.testing.assert_frame_equal(test.drop(columns="image"), test_before.drop(columns="image"))
    # Drawn from a seed of its own: not the test questions again.
    val_items = set(zip(val.problem, val.solution))
    test_items = set(zip(test.problem, test.solution))
    assert len(val_items & test_items) < len(val_items) / 4
    assert set(val["group"]) == set(test["group"])


def test_a_run_can_evaluate_on_the_validation_split(smoke_run):
    run_dir, summary = smoke_run("objective=sft", "data.test_split=val", "trainer.max_steps=1")
    first = sorted((run_dir / "samples").glob("eval_step*.jsonl"))[0]
    rows = first.read_text().splitlines()
    assert rows and all('"id": "val-' in r for r in rows)


def test_another_validation_size_rewrites_the_validation_split_alone(visurf_cache):
    from visurf.data.sources import synth_dir

    folder = synth_dir(small(num_val=20))
    val_20 = pd.read_parquet(folder / "val.parquet")
    test_before = (folder / "test.parquet").stat().st_mtime_ns
    assert synth_dir(small(num_val=50)) == folder
    val_50 = pd.read_parquet(folder / "val.parquet")
    assert len(val_50) == 50  # not the cached 20 rows, silently
    # Row i depends on (seed, i) only: the larger split starts with the smaller one's rows.
    pd.testing.assert_frame_equal(val_50.iloc[:20].drop(columns="image"), val_20.drop(columns="image"))
    assert (folder / "test.parquet").stat().st_mtime_ns == test_before  # train and test untouched
    assert len(pd.read_parquet(synth_dir(small(num_val=20)) / "val.parquet")) == 20
