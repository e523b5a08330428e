"""experiments/sweeps/collect_results.sh, run_pocket.sh and eval_fresh.sh: the sweeps they are given by name; names they do not know are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"
    }  # the venv's python first, as the scripts ask
    return subprocess.run(["bash", str(EXPERIMENTS / name), *args], capture_output=True, text=True, env=env)


def test_an_unknown_sweep_name_is_refused_before_anything_is_copied():
    out = script("collect_results.sh", "pocket", "ablations")
    assert out.returncode == 2 and "no sweep named 'ablations'" in out.stderr


def test_run_pocket_refuses_an_unknown_sweep_before_any_run():
    out = script("run_pocket.sh", "pockett", "seed=0")
    assert out.returncode == 2 and "no sweep named 'pockett'" in out.stderr


def test_eval_fresh_refuses_an_unknown_sweep_and_a_test_split_no_larger_than_the_sweeps():
    out = script("eval_fresh.sh", "ablations")
    assert out.returncode == 2 and "no sweep named 'ablations'" in out.stderr
    for size in ("500", "2k"):
        out = script("eval_fresh.sh", "pocket", size)
        assert out.returncode == 2 and f"got '{size}'" in out.stderr
