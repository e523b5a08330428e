"""The commands on the published convention's data: a bad row, or a hub dataset missing from the
local cache, ends visurf.eval and visurf.run with one line and exit status 2 (subprocess runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.replica_layouts import replica_splits, split_files


@pytest.fixture(scope="module")
def splits():
    return replica_splits(num_train=8, num_test=4, stored=224)


def _command(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
    )


def _one_line(out: subprocess.CompletedProcess, prefix: str) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def bad_rows(tmp_path_factory, splits):
    """The replica with one test row whose box leaves the stored 224 x 224 image."""
    import datasets

    from visurf.data.seg_zero_replica import features

    rows = splits["test"].to_list()
    rows[1]["solution"] = json.dumps([{"bbox_2d": [300, 10, 400, 50], "point_2d": [350, 20]}])
    bad = {"train": splits["train"], "test": datasets.Dataset.from_list(rows, features=features())}
    return split_files(tmp_path_factory.mktemp("bad") / "files", bad)


def test_a_bad_row_ends_visurf_eval_with_one_line(bad_rows):
    # (visurf.run's: tests/cli/test_run_errors.py)
    out = _command("visurf.eval", "checkpoint=base", "model=tiny", "data=local", f"data.path={bad_rows}")
    line = _one_line(out, "visurf.eval:")
    assert "bad row 'vr00009': solution[0] bbox_2d [300, 10, 400, 50] is outside the 224x224 image" in line


@pytest.mark.parametrize("module", ["visurf.eval", "visurf.run"])
def test_a_missing_hub_dataset_ends_a_command_with_one_line(tmp_path, module):
    own = ["checkpoint=base", "model=tiny"] if module == "visurf.eval" else ["experiment=smoke"]
    hydra = [] if module == "visurf.eval" else [f"hydra.run.dir={tmp_path / 'run'}"]
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": "", "HF_DATASETS_CACHE": ""}
    out = _command(module, *own, "data=hub", "data.hub_id=Someone/absent_set", *hydra, env=env)
    line = _one_line(out, module.replace("visurf.run", "visurf") + ":")
    assert "data.hub_id=Someone/absent_set is not in the local HF caches" in line
    assert str(tmp_path / "hf" / "hub") in line and "huggingface-cli download --repo-type dataset" in line
