"""Fault injection with real kills: `python -m visurf.run` killed (SIGKILL) at random points,
mid-checkpoint included, with $TMPDIR on another filesystem (a tmpfs), resumed to the end: the
metrics, summary and final weights equal those of the uninterrupted run. Model cache entries
count only once complete: a build killed half way is redone, not loaded."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_resume_and_guards import assert_same_run

# Runs visurf.run with one fault armed by VISURF_TEST_KILL=<kind>:<n>: `ckpt:n` writes half of the
# n-th checkpoint then kills the process, `row:n` kills it right after the n-th metrics flush,
# `summary:1` kills it just before summary.json is written.
LAUNCHER = r"""
import io, os, runpy, signal, sys
kind, _, n = os.environ.get("VISURF_TEST_KILL", "none:0").partition(":")
n, calls = int(n or 0), [0]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def hit():
    calls[0] += 1
    return calls[0] == n
if kind == "ckpt":
    import torch
    import lightning.fabric.plugins.io.torch_io as torch_io
    real_save = torch_io._atomic_save
    def half(checkpoint, path):
        if hit():
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            with open(path, "wb") as f:
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
            die()
        return real_save(checkpoint, path)
    torch_io._atomic_save = half
elif kind == "row":
    import visurf.runs.metrics_log as metrics_log
    real_flush = metrics_log._Writer.save
    def save(self):
        real_flush(self)
        if hit():
            die()
    metrics_log._Writer.save = save
elif kind == "summary":
    import visurf.io.atomic as atomic
    real_write = atomic.write_text
    def write_text(path, text):
        if str(path).endswith("summary.json"):
            die()
        return real_write(path, text)
    atomic.write_text = write_text
sys.argv = ["visurf.run", *sys.argv[1:]]
runpy.run_module("visurf.run", run_name="__main__")
"""

RUN = ["experiment=smoke", "objective=visurf", "train.checkpoint_every=2"]


@pytest.fixture
def launch(tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path
    tmpdir = shm / f"visurf-faults-{os.getpid()}"
    tmpdir.mkdir(exist_ok=True)

    def go(*args: str, kill: str = "none:0") -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "VISURF_TEST_KILL": kill,
            "TMPDIR": str(tmpdir),  # another filesystem than the run directory
            "OMP_NUM_THREADS": "1",
            "HYDRA_FULL_ERROR": "0",
        }
        return subprocess.run(
            [sys.executable, str(script), *RUN, *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )

    yield go
    for stale in tmpdir.glob("*"):
        stale.unlink() if stale.is_file() else None
    tmpdir.rmdir() if not any(tmpdir.iterdir()) else None


def _killed(out: subprocess.CompletedProcess) -> bool:
    return out.returncode == -9


@pytest.mark.slow
def test_killed_mid_checkpoint_then_resumed_equals_the_whole_run(tmp_path, launch):
    """One real kill: half of step 4's last.ckpt written, then SIGKILL (about a minute: three
    processes; the default suite's in-process variant is in tests/integration/test_resume_and_guards.py)."""
    whole, run = tmp_path / "whole", tmp_path / "run"
    out = launch("trainer.max_steps=4", f"hydra.run.dir={whole}")
    assert out.returncode == 0, out.stderr[-3000:]
    # writes: step00002, last (2), step00004, last (4): the 4th is killed half way
    out = launch("trainer.max_steps=4", f"hydra.run.dir={run}", kill="ckpt:4")
    assert _killed(out), out.stderr[-3000:]
    assert json.loads((whole / "summary.json").read_text())["steps"] == 4
    out = launch("trainer.max_steps=4", f"resume={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert_same_run(whole, run)


@pytest.mark.slow
def test_killed_at_random_points_and_resumed_to_the_end_equals_the_whole_run(tmp_path, launch):
    rng = random.Random(18)
    steps = 8
    whole = tmp_path / "whole"
    out = launch(f"trainer.max_steps={steps}", f"hydra.run.dir={whole}")
    assert out.returncode == 0, out.stderr[-3000:]
    for trial in range(2):
        run = tmp_path / f"run{trial}"
        faults = [
            f"row:{rng.randint(3, 12)}",
            f"ckpt:{rng.randint(1, 4)}",
            f"row:{rng.randint(2, 8)}",
            "summary:1",
        ]
        rng.shuffle(faults)
        started = False
        for fault in faults:
            args = [f"trainer.max_steps={steps}", f"resume={run}" if started else f"hydra.run.dir={run}"]
            out = launch(*args, kill=fault)
            if out.returncode == 2 and "no checkpoints/ folder" in out.stderr:
                continue  # killed before its first checkpoint: nothing to resume yet
            assert out.returncode in (0, -9), out.stderr[-3000:]
            started = started or (run / "checkpoints").is_dir()
        while not (run / "summary.json").exists():
            args = [f"trainer.max_steps={steps}", f"resume={run}" if started else f"hydra.run.dir={run}"]
            out = launch(*args)
            assert out.returncode == 0, out.stderr[-3000:]
            started = True
        assert_same_run(whole, run)


def test_an_interrupted_cache_build_is_redone_not_loaded(tmp_path, monkeypatch):
    """Issue repro: a tiny-model build killed after config.json appeared (empty) poisoned the cache."""
    from visurf.io.cache import COMPLETE, build_entry, is_complete

    entry = tmp_path / "models" / "thing"

    def interrupted(folder: Path):
        folder.mkdir()
        (folder / "config.json").write_text("")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_entry(entry, interrupted)
    assert not entry.exists() and not is_complete(entry)
    # An entry left by a build before markers existed (or copied by hand) does not count either.
    entry.mkdir(parents=True)
    (entry / "config.json").write_text("")

    def build(folder: Path):
        folder.mkdir()
        (folder / "config.json").write_text('{"ok": true}')

    assert build_entry(entry, build) == entry and is_complete(entry) and (entry / COMPLETE).is_file()
    assert json.loads((entry / "config.json").read_text()) == {"ok": True}
    assert [p.name for p in entry.parent.iterdir() if p.name != "thing.lock"] == ["thing"]
    assert build_entry(entry, interrupted) == entry  # complete: not built again


def test_the_tiny_model_is_rebuilt_after_a_killed_build(tmp_path, monkeypatch):
    from visurf.models import loading

    monkeypatch.setenv("VISURF_CACHE", str(tmp_path))
    real = loading.build_tiny

    def killed_after_config(out, cfg):
        Path(out).mkdir(parents=True)
        (Path(out) / "config.json").write_text("")
        raise KeyboardInterrupt

    monkeypatch.setattr(loading, "build_tiny", killed_after_config)
    with pytest.raises(KeyboardInterrupt):
        loading.tiny_dir(112)
    monkeypatch.setattr(loading, "build_tiny", real)
    path = loading.tiny_dir(112)
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen2_5_vl"
