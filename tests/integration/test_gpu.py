"""What only a GPU can check, marked `gpu` and skipped where torch.cuda is unavailable:
bf16 runs of every objective on CUDA, QLoRA with bitsandbytes' CUDA kernels, Lightning's FSDP
strategy on one device, and the stock processor against visurf's own processing path (a GPU
machine has torchvision). `bash experiments/bench/gpu_check.sh` runs them (`-m gpu`) on a lent GPU.

The tests at the end run everywhere: they check that script and experiments/bench/gpu_step.py."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch

from tests.integration.test_adapters import (  # noqa: F401  (captured, varied_reward: fixtures)
    TEXT_LAYERS,
    adapter_run,
    captured,
    check_adapter_run,
    varied_reward,
)
from tests.integration.test_bf16 import OBJECTIVES, bf16_run, check_bf16_run, head_dtypes  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SKIP_REASON = (
    "needs a CUDA device (torch.cuda.is_available() is False); bash experiments/bench/gpu_check.sh runs these"
)
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=SKIP_REASON)


@gpu
@needs_cuda
@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_every_objective_runs_in_bf16_mixed_on_cuda(tmp_path, head_dtypes, objective):  # noqa: F811
    summary, losses = bf16_run(tmp_path, objective, "bf16-mixed", "trainer=gpu", *OBJECTIVES[objective])
    check_bf16_run(summary, losses, head_dtypes, objective)
    assert losses.devices == {"cuda"}


@gpu
@needs_cuda
def test_bf16_true_runs_on_cuda(tmp_path, head_dtypes):  # noqa: F811
    summary, losses = bf16_run(tmp_path, "sft_rlvr", "bf16-true", "trainer=gpu", *OBJECTIVES["sft_rlvr"])
    check_bf16_run(summary, losses, head_dtypes, "sft_rlvr")
    assert losses.devices == {"cuda"}


@gpu
@needs_cuda
def test_qlora_trains_with_4_bit_cuda_layers(smoke_run, varied_reward, captured):  # noqa: F811
    # bf16 compute for the 4-bit layers, as the Qwen2.5-VL presets have it (peft.compute_dtype).
    overrides = ("objective=visurf", "peft=qlora", "trainer=gpu", "model.dtype=bfloat16")
    run_dir, summary = adapter_run(smoke_run, varied_reward, *overrides)
    (policy,) = captured
    check_adapter_run(run_dir, summary, policy)
    assert summary["skipped_steps"] == 0
    four_bit = [m for m in policy.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == TEXT_LAYERS
    assert all(m.weight.device.type == "cuda" and m.weight.dtype == torch.uint8 for m in four_bit)
    assert {m.compute_dtype for m in four_bit} == {torch.bfloat16}


@gpu
@needs_cuda
@pytest.mark.parametrize("objective", ["sft", "visurf"])
def test_lightning_fsdp_strategy_on_one_cuda_device(smoke_run, objective):
    # conf/trainer/fsdp.yaml as it is (FULL_SHARD, activation checkpointing, bf16-mixed), one device.
    run_dir, summary = smoke_run(f"objective={objective}", "trainer=fsdp", "trainer.devices=1")
    assert summary["steps"] == 2 and summary["skipped_steps"] == 0
    assert (run_dir / "model" / "config.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()


@gpu
@needs_cuda
def test_stock_processor_gives_visurf_s_inputs(tiny_dir):
    assert importlib.util.find_spec("torchvision"), (
        "a GPU machine has torchvision: the stock processor is built"
    )
    from tests.integration import test_processing

    test_processing.test_stock_and_fallback_give_identical_inputs(tiny_dir)


# -- the device check's own pieces, everywhere ---------------------------------------------------


def test_gpu_check_script_parses():
    script = ROOT / "experiments" / "bench" / "gpu_check.sh"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "-m gpu" in text and "experiments/bench/gpu_step.py" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skipping, which only happens without CUDA")
def test_gpu_tests_skip_cleanly_without_cuda():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "-p", "no:cacheprovider", __file__],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    gpu_tests = len(OBJECTIVES) + 1 + 1 + 2 + 1
    assert f"{gpu_tests} skipped" in done.stdout, done.stdout[-3000:]
    assert "passed" not in done.stdout and "failed" not in done.stdout and "error" not in done.stdout
    reasons = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all("needs a CUDA device" in line for line in reasons)


def test_the_step_model_has_qwen2_5_vl_3b_s_shape():
    from experiments.bench.gpu_step import build_config, parameter_counts

    counts = parameter_counts(build_config("3b"))
    assert counts["total"] == 3_754_622_976  # Qwen2.5-VL-3B-Instruct's parameter count
    assert counts["embedding"] == 151_936 * 2048


def test_gpu_step_runs_at_a_tiny_shape(tmp_path):
    from experiments.bench.gpu_step import main

    out = tmp_path / "step.json"
    args = ["--shape", "tiny", "--device", "cpu", "--prompts", "1", "--generations", "2"]
    result = main([*args, "--completion", "8", "--steps", "1", "--warmup", "0", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    # 4 words, vision start, 4 image tokens (56 px: 4 x 4 patches, merged 2 x 2), vision end, 60 words
    assert result["rows"] == 3 and result["tokens_per_row"] == 4 + 1 + 4 + 1 + 60 + 8
    assert result["step_s"] > 0 and result["tokens_per_s"] > 0 and 0 < result["mfu"] < 1
    flops = result["model_tflop_per_step"] * 1e12
    assert result["mfu"] == pytest.approx(flops / result["step_s"] / 989e12, rel=1e-2)
