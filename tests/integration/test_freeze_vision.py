"""model.freeze_vision_tower=true trains the language model only."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from tests.conftest import run


def _weights(model_dir):
    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def test_a_frozen_vision_tower_keeps_its_weights_while_the_language_model_trains(tmp_path, tiny_dir):
    run_dir, _ = run(
        tmp_path,
        "experiment=smoke",
        "objective=visurf",
        "model.freeze_vision_tower=true",
        "optim.lr=1e-2",
        "optim.warmup_steps=0",
    )
    before, after = _weights(tiny_dir), _weights(run_dir / "model")
    assert before.keys() == after.keys()
    vision = [k for k in before if k.startswith("visual.")]
    language = [k for k in before if k.startswith("model.layers.")]
    assert vision and language
    assert all(torch.equal(before[k], after[k]) for k in vision)
    assert any(not torch.equal(before[k], after[k]) for k in language)


def test_without_the_flag_the_vision_tower_trains_too(tmp_path, tiny_dir):
    run_dir, _ = run(
        tmp_path, "experiment=smoke", "objective=visurf", "optim.lr=1e-2", "optim.warmup_steps=0"
    )
    before, after = _weights(tiny_dir), _weights(run_dir / "model")
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("visual."))
