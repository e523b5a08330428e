"""experiments/position_probe.py: the probe itself, and a run on the tiny model."""

from __future__ import annotations

import torch

from experiments.position_probe import linear_probe
from experiments.position_probe import main as probe_main


def test_linear_probe_separates_separable_classes_and_not_random_ones():
    torch.manual_seed(0)
    labels = torch.arange(400) % 4
    separable = torch.nn.functional.one_hot(labels, 4).float() + 0.1 * torch.randn(400, 4)
    assert linear_probe(torch.cat([separable, torch.randn(400, 8)], 1), labels, 4) == 1.0
    assert linear_probe(torch.randn(400, 12), labels, 4) < 0.5  # chance is 0.25


def test_probe_reads_each_token_place_from_the_gradient_background(tmp_path, monkeypatch):
    monkeypatch.setenv("VISURF_CACHE", str(tmp_path))
    result = probe_main(["model=tiny", "data.synth.num_train=40", "data.synth.num_test=8"], num_images=40)
    assert result["tokens"] == 40 * 16 and result["places"] == 16
    # The background tint tells every empty token its place, even through an untrained tower.
    assert result["empty"] > 0.9
    assert 0.0 <= result["object"] <= 1.0
    # Shapes are filled with saturated palette colours, which the tower's features keep apart.
    assert result["colour"] > 0.9
