"""experiments/sweeps/eval_benchmarks.sh: every evaluation set that is here, evaluated, in one table (on replicas)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_eval_benchmarks import GREFCOCO, REASONSEG, REFCOCO, write_replica
from visurf.analysis.benchmarks import markdown, rows
from visurf.models.tiny_sam2 import tiny_sam2_dir

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "eval_benchmarks.sh"


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sets")
    # Named as the authors' sets, given out of order: the table puts them in the papers' order.
    named = {"grefcoco_val_all": GREFCOCO, "ReasonSeg_val": REASONSEG, "refcoco_val": REFCOCO}
    return [write_replica(root / name, replica) for name, replica in named.items()]


def script(*args: str, benchmarks: str, out: Path, hub_cache: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # the venv's python first
        "BENCHMARKS": benchmarks,
        "OUT": str(out),
        "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_OFFLINE": "1",
        "VISURF_CACHE": os.environ["VISURF_CACHE"],
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env)


def test_a_table_of_every_set_here(answerer, benchmarks, tmp_path):
    out = tmp_path / "table"
    # A hub id that is not in the (empty) cache is passed over.
    entries = " ".join([*map(str, benchmarks), "Ricky06662/ReasonSeg_test"])
    done = script(str(answerer), benchmarks=entries, out=out, hub_cache=tmp_path / "hub")
    assert done.returncode == 0, done.stderr
    lines = (out / "table.md").read_text().splitlines()
    assert lines[0] == "| benchmark | gIoU | cIoU | hit@0.5 | N-Acc | masks | samples |"
    # Hand-worked in tests/cli/test_eval_benchmarks.py: ReasonSeg-like 1.5 / 3, 11250 / 22600, 1 / 3;
    # RefCOCO-like (1 + 2400 / 22000) / 2, (14400 + 2400) / (14400 + 22000), 1 / 2; gRefCOCO-like
    # 3 / 5, 3600 / 7300, 3 / 5, N-Acc 2 / 3.
    assert lines[2:5] == [
        "| ReasonSeg_val | 50.0 | 49.8 | 33.3 | — | box | 3 |",
        "| refcoco_val | 55.5 | 46.2 | 50.0 | — | box | 2 |",
        "| grefcoco_val_all | 60.0 | 49.3 | 60.0 | 66.7 | box | 5 |",
    ]
    assert "gIoU and cIoU are box-level" in lines[-1] and done.stdout.endswith((out / "table.md").read_text())
    assert (out / "table.csv").read_text().splitlines()[1] == "ReasonSeg_val,50.0,49.8,33.3,,box,3"
    samples = json.loads((out / "grefcoco_val_all.json").read_text())["samples"]
    assert [s["boxes"] for s in samples] == [[], [], [[20, 30, 80, 90]], [], [[20, 30, 80, 90]]]


def test_with_a_segmenter(answerer, benchmarks, tmp_path, visurf_cache):
    out = tmp_path / "masks"
    sam2 = tiny_sam2_dir("image")
    done = script(
        str(answerer),
        f"eval.segmenter.path={sam2}",
        benchmarks=str(benchmarks[0]),
        out=out,
        hub_cache=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "grefcoco_val_all.json").read_text())
    assert result["level"] == "mask"
    expected = markdown(rows({"grefcoco_val_all": result}))
    assert (out / "table.md").read_text() == expected and "| sam2 | 5 |" in expected
    assert f"| {100 * result['giou']:.1f} | {100 * result['ciou']:.1f} | 60.0 | 66.7 |" in expected


def test_nothing_here_is_an_error(tmp_path):
    done = script("base", benchmarks="Ricky06662/ReasonSeg_val", out=tmp_path / "o", hub_cache=tmp_path)
    assert done.returncode == 2 and "none of the evaluation sets is here" in done.stderr
    assert not (tmp_path / "o").exists()
