"""The main job as a user runs it: `python -m visurf.run objective=visurf reward_control=all`.

Slow (it builds the base model in an empty cache, then post-trains it on seeds 0 and 1): run with
`pytest -m slow`. It checks what the README says the main job does on a fresh build of the base:
each seed raises test accuracy (more questions gained than lost), and summed over the two seeds
the gain is significant (McNemar p < 0.01). How long each run took is printed, not asserted: speed
is measured by the benchmarks in experiments/bench.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from visurf.evaluation.paired import summed_change


def main_job(run_dir, env, *overrides) -> float:
    start = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "visurf.run",
            "objective=visurf",
            "reward_control=all",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return time.time() - start


@pytest.mark.slow
def test_main_job_improves_test_accuracy_on_a_fresh_base(tmp_path):
    env = {**os.environ, "VISURF_CACHE": str(tmp_path / "cache")}
    seconds = {
        "seed0": main_job(tmp_path / "seed0", env),  # builds the tiny model and the base first
        "seed1": main_job(tmp_path / "seed1", env, "seed=1"),
    }
    changes = {}
    for run, took in seconds.items():
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        change = changes[run] = summary["change"]
        print(
            f"{run}: accuracy {summary['eval_before']['accuracy']:.3f} -> {summary['eval_after']['accuracy']:.3f}, "
            f"gained {change['gained']}, lost {change['lost']}, p {change['p_value']:.2g} ({took:.0f} s)"
        )
    summed = summed_change(list(changes.values()))
    print(f"summed: gained {summed['gained']}, lost {summed['lost']}, p {summed['p_value']:.2g}")
    for run, change in changes.items():
        assert change["gained"] > change["lost"], (run, change)
    assert summed["p_value"] < 0.01, summed
