"""visurf.run refuses bad input before it builds anything: one `visurf:` line, exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.unit.test_data import _png, _row


def cli(*args: str, cwd=None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "visurf.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_cli_refuses_a_late_error_up_front_in_one_line(tmp_path):
    """An unknown reward used to fail only after the model was built (minutes for the base)."""
    out = cli("reward.name=nope", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "visurf: reward.name='nope' is invalid" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before the run started


def test_cli_refuses_an_invalid_value_before_building_a_model(tmp_path):
    out = cli("rollout.num_generations=0", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2
    assert "rollout.num_generations=0 is invalid" in out.stderr
    assert not (tmp_path / "run" / "model").exists() and "Loading weights" not in out.stderr


def test_cli_refuses_an_unknown_option_listing_the_valid_ones():
    out = cli("objective=ppo")
    assert out.returncode != 0
    text = out.stderr + out.stdout
    assert "objective/ppo" in text
    for name in ("sft", "rlvr", "grpo", "sft_rlvr", "visurf"):
        assert name in text


def test_cli_works_from_any_working_directory(tmp_path):
    out = cli("experiment=smoke", "objective=sft_rlvr", "--cfg", "job", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "name: sft_rlvr" in out.stdout and "max_steps: 2" in out.stdout


def test_bad_rows_stop_the_cli_with_one_line_and_exit_2(tmp_path):
    """Like a config error: `visurf: bad row ...`, no traceback, before any model is built."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(_png())
    (data / "train.jsonl").write_text(json.dumps(_row(image="a.png")) + "\n")
    bad = _row(id="q-9", image="a.png", solution='[{"bbox_2d": [10, 10, 50, 60], "point_2d": [100, 20]}]')
    (data / "test.jsonl").write_text(json.dumps(bad) + "\n")
    out = cli("experiment=smoke", "data=local", f"data.path={data}", f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "visurf: bad row 'q-9': solution[0] point_2d [100, 20] is outside its own bbox_2d" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "run" / "model").exists()
