"""experiment=visurf_qwen2_5_vl_7b (and its one-GPU LoRA variant): the published settings compose
and validate, and the same run trains on CPU with the tiny model through the same data path."""

from __future__ import annotations

import pytest

from tests.replica_layouts import replica_splits, split_files
from visurf.config.compose import compose_config
from visurf.config.validate import validate


@pytest.mark.parametrize("preset", ["visurf_qwen2_5_vl_7b", "visurf_qwen2_5_vl_7b_lora"])
def test_the_published_settings_compose_and_validate(preset):
    cfg = compose_config([f"experiment={preset}"])
    validate(cfg)
    assert cfg.model.hf_id == "Qwen/Qwen2.5-VL-7B-Instruct" and cfg.model.frame == 840
    assert cfg.data.source == "hub" and cfg.data.hub_id == "Ricky06662/ViSurf_multi_non_object_7300_size840"
    assert cfg.objective.name == "visurf" and cfg.reward.name == "vision_reasoner"
    assert cfg.optim.lr == 1e-6 and cfg.train.epochs == 1
    assert cfg.rollout.num_generations == 8 and cfg.rollout.max_new_tokens == 2000
    assert cfg.rollout.temperature == 1.0 and cfg.trainer.precision == "bf16-mixed"
    world = cfg.trainer.devices * cfg.trainer.num_nodes
    assert cfg.train.batch_size * world == 16  # prompts per rollout batch
    if preset.endswith("lora"):
        assert (cfg.trainer.name, cfg.peft.name, cfg.objective.beta) == ("gpu", "lora", 1e-2)
    else:
        assert (cfg.trainer.name, cfg.peft.name, cfg.objective.beta) == ("fsdp", "none", 0.0)


def test_the_run_trains_on_cpu_with_the_tiny_model(tmp_path):
    from visurf.recipes.train import train

    data = split_files(tmp_path / "data", replica_splits(num_train=8, num_test=2, stored=224))
    cfg = compose_config(
        [
            "experiment=visurf_qwen2_5_vl_7b_lora",
            "model=tiny",
            "trainer=cpu",
            "peft=none",
            "objective.beta=0",
            "data=local",
            f"data.path={data}",
            "data.train_split=train",
            "data.test_split=test",
            "data.num_workers=1",
            "train.batch_size=4",
            "train.micro_batch_size=0",
            "rollout.num_generations=2",
            "rollout.max_new_tokens=8",
            "eval.max_new_tokens=8",
        ]
    )
    summary = train(cfg, tmp_path / "run")
    assert summary["steps"] == 2  # train.epochs=1: 8 rows in batches of 4
    assert summary["eval_after"]["num_examples"] == 2 and summary["skipped_rows"] == {"train": 0, "test": 0}
