"""experiments/bench/bench_data.py: both data paths hand the first step a batch at 840 px."""

from __future__ import annotations

from experiments.bench import bench_data


def test_both_paths_reach_the_first_batch(tmp_path):
    folder = bench_data.build(tmp_path, 12)
    assert (folder / "dataset_dict.json").is_file()
    eager = bench_data.measure("eager", folder, 10)
    lazy = bench_data.measure("lazy", folder, 10)
    for result in (eager, lazy):
        assert result["rows"] == 10 and result["seconds"] > 0 and result["growth_mib"] >= 0
    assert (eager["mode"], lazy["mode"]) == ("eager", "lazy")
