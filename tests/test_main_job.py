"""The main job as a user runs it: `python -m visurf.run objective=visurf reward_control=all`.

Slow (it builds the base model on first use, then post-trains it): run with `pytest -m slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_main_job_improves_test_accuracy_within_budget(tmp_path):
    env = {**os.environ, "VISURF_CACHE": str(tmp_path / "cache")}
    times = []
    for attempt in ("first", "cached"):
        start = time.time()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "visurf.run",
                "objective=visurf",
                "reward_control=all",
                f"hydra.run.dir={tmp_path / attempt}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        times.append(time.time() - start)
        assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "cached" / "summary.json").read_text())
    print(
        f"first run {times[0]:.0f} s, cached base {times[1]:.0f} s; accuracy "
        f"{summary['eval_before']['accuracy']:.3f} -> {summary['eval_after']['accuracy']:.3f}"
    )
    assert summary["eval_after"]["accuracy"] > summary["eval_before"]["accuracy"]
    assert times[0] < 600 and times[1] < 300
