"""What a run prints: the start block, one line per evaluation, each line once, no library chatter."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pytest

from visurf.config.compose import compose_config
from visurf.evaluation.line import eval_line
from visurf.training.console import DropInfo, quiet_libraries, run_header


def rows(header: str) -> dict[str, str]:
    lines = header.splitlines()
    assert lines[0] == "visurf run"
    return {line[2:17].strip(): line[17:].strip() for line in lines[1:]}


def test_the_start_block_names_the_run_and_a_reward_control_only_where_one_applies():
    visurf = rows(run_header(compose_config(["reward_control=align"]), "outputs/x"))
    assert list(visurf) == ["objective", "reward control", "model", "data", "steps", "trainer", "run dir"]
    assert visurf["objective"] == "visurf: ViSurf" and visurf["reward control"] == "align (align)"
    assert visurf["model"].startswith("tiny_base (112-px frame") and visurf["run dir"] == "outputs/x"
    assert visurf["steps"].startswith("80 optimisation steps (8 prompts x 8 completions per step")
    assert "2000 train, 1000 test rows" in visurf["data"]
    for objective, stages in [
        ("sft", "SFT"),
        ("rlvr", "RLVR"),
        ("sft_rlvr", "SFT (50% of the steps) -> RLVR"),
    ]:
        block = rows(run_header(compose_config([f"objective={objective}"]), "d"))
        assert "reward control" not in block and block["objective"] == f"{objective}: {stages}"
    assert "x 8 completions" not in rows(run_header(compose_config(["objective=sft"]), "d"))["steps"]


def test_an_evaluation_is_one_line_and_reads_the_older_metric_name():
    metrics = {
        "accuracy": 0.396,
        "mean_reward": 5.2,
        "format_rate": 1.0,
        "strict_format_rate": 0.99,
        "giou": 0.4,
        "num_examples": 500,
        "groups": {"known": {"accuracy": 0.5}, "non_object": {"accuracy": None}},
    }
    change = {"gained": 37, "lost": 24, "p_value": 0.1234}
    line = eval_line("after", 60, metrics, change)
    assert line == (
        "eval after (step 60, 500 questions): accuracy 0.396 (known 0.500, non-object —) | "
        "strict format 0.99, answer format 1.00, gIoU 0.400, reward 5.200 | 37 gained, 24 lost (McNemar p 0.12)"
    )
    old = {**metrics, "think_rate": 0.5}
    del old["strict_format_rate"]
    assert "strict format 0.50" in eval_line("before", 0, old) and "\n" not in line


@pytest.fixture
def logging_state():
    """quiet_libraries changes process-wide state: put it back for the other tests."""
    import datasets
    import lightning  # noqa: F401
    import transformers

    names = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names}
    bars = (datasets.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled())
    with warnings.catch_warnings():
        yield
    for n, (handlers, propagate) in saved.items():
        logger = logging.getLogger(n)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, DropInfo)]
    if bars[0]:
        datasets.enable_progress_bars()
    if bars[1]:
        transformers.utils.logging.enable_progress_bar()


def test_quiet_libraries_leaves_lightning_one_way_out_and_drops_its_tips(caplog, logging_state):
    quiet_libraries()
    assert not logging.getLogger("lightning").handlers and logging.getLogger("lightning.pytorch").propagate
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        rank_zero.info("💡 Tip: try installing something")
        rank_zero.info("GPU available: False, used: False")
        rank_zero.info("a line worth reading")
    assert [r.getMessage() for r in caplog.records] == ["a line worth reading"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("The 'train_dataloader' does not have many workers (bottleneck).", stacklevel=1)
        warnings.warn("a warning worth reading", stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning worth reading"]


def test_a_run_prints_each_line_once_and_no_library_chatter(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    argv = ["-m", "visurf.run", "experiment=smoke", f"hydra.run.dir={tmp_path / 'run'}"]
    out = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), "a line was printed twice"
    for chatter in (
        "Tip",
        "LeafSpec",
        "ModelCheckpoint with manual",
        "exists and is not empty",
        "INFO: ",
        "Epoch",
        "transfer_batch_to_device",
    ):
        assert chatter not in text, chatter
    assert "reward control  all (align, no_think, smooth)" in text
    assert sum("eval before (step 0, 4 questions)" in line for line in lines) == 1
    assert sum("eval after (step 2, 4 questions)" in line and "gained" in line for line in lines) == 1
    # Hydra's handlers are the only ones left: the run's log file holds the same lines.
    assert "eval after (step 2" in (tmp_path / "run" / "run.log").read_text()
