"""experiments/probes/position_probe.py: the probe itself, and a run on the tiny model."""

from __future__ import annotations

import torch

from experiments.probes.position_probe import linear_probe, shape_under
from experiments.probes.position_probe import main as probe_main


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
    # One balanced probe per pair of the world's shapes.
    assert {k for k in result if " / " in k} == {"circle / square", "circle / triangle", "square / triangle"}
    assert all(0.0 <= result[k] <= 1.0 for k in result if " / " in k)


def test_balanced_accuracy_does_not_reward_naming_the_common_class():
    torch.manual_seed(0)
    labels = (torch.arange(400) % 10 == 0).long()  # 10% of one class
    noise = torch.randn(400, 12)
    assert linear_probe(noise, labels, 2) > 0.8  # mostly "the common class"
    assert linear_probe(noise, labels, 2, balanced=True) < 0.7
    separable = torch.cat([labels[:, None].float() + 0.05 * torch.randn(400, 1), noise], 1)
    assert linear_probe(separable, labels, 2, balanced=True) == 1.0


def test_shape_under_finds_the_box_that_holds_a_point():
    from visurf.data.synth_scene import SceneObject

    objects = [SceneObject("red", "circle", (0, 0, 10, 10)), SceneObject("blue", "triangle", (20, 0, 30, 10))]
    assert shape_under(objects, 5, 5) == "circle" and shape_under(objects, 25, 9.5) == "triangle"
    assert shape_under(objects, 10, 5) is None  # x2 is exclusive
