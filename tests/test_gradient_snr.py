"""experiments/gradient_snr.py: the signal share of a step's gradient, from independent batches."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load():
    sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location("gradient_snr", ROOT / "experiments" / "gradient_snr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_estimates_recover_a_known_signal_and_noise():
    torch.manual_seed(0)
    k, p = 64, 20_000
    signal = torch.full((p,), 0.5, dtype=torch.float64)  # |s|^2 = 0.25 p
    grads = signal + torch.randn(k, p, dtype=torch.float64)  # E|n|^2 = p
    out = load().snr(grads)
    assert out["signal_energy"] == pytest.approx(0.25 * p, rel=0.05)
    assert out["grad_energy"] == pytest.approx(1.25 * p, rel=0.02)
    assert out["signal_share"] == pytest.approx(0.2, abs=0.01)
    assert out["adam_signal_share"] == pytest.approx(0.2, abs=0.02)  # every parameter alike here


def test_pure_noise_has_no_signal_and_one_batch_is_refused():
    torch.manual_seed(1)
    out = load().snr(torch.randn(32, 10_000, dtype=torch.float64))
    assert abs(out["signal_share"]) < 0.01 and out["adam_signal_share"] < 0.05
    with pytest.raises(ValueError, match="at least 2 batches"):
        load().snr(torch.randn(1, 10, dtype=torch.float64))


def test_the_probe_runs_the_real_stage_on_real_batches(tmp_path):
    out = load().main(
        ["--batches", "2", "--out", str(tmp_path / "snr.json"), "experiment=smoke", "objective=visurf"]
    )
    # the injected label gives every group a reward spread, so the gradients are not zero
    assert out["grad_energy"] > 0 and out["batches"] == 2
    assert (tmp_path / "snr.json").exists()
