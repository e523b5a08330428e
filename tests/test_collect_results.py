"""experiments/collect_results.sh and run_pocket.sh: the sweeps they are given by name; names they do not know are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "collect_results.sh"


def collect(*sweeps: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"
    }  # the venv's python first, as the script asks
    return subprocess.run(["bash", str(SCRIPT), *sweeps], capture_output=True, text=True, env=env)


def test_an_unknown_sweep_name_is_refused_before_anything_is_copied():
    out = collect("pocket", "ablations")
    assert out.returncode == 2
    assert "no sweep named 'ablations'" in out.stderr


def test_run_pocket_refuses_an_unknown_sweep_before_any_run():
    script = SCRIPT.with_name("run_pocket.sh")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    out = subprocess.run(["bash", str(script), "pockett", "seed=0"], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "no sweep named 'pockett'" in out.stderr
