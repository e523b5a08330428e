"""Hydra composition and config checks, through the real `python -m visurf.run` entry point."""

from __future__ import annotations

import pytest

from visurf.config.compose import compose_config
from visurf.config.validate import ConfigError, validate
from visurf.reward_control import RewardControl


def test_defaults_are_the_main_job():
    cfg = compose_config()
    assert (cfg.objective.name, cfg.reward_control.name, cfg.model.name) == ("visurf", "all", "tiny_base")
    assert list(cfg.reward_control.strategies) == ["align", "no_think", "smooth"]


@pytest.mark.parametrize("name", ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"])
def test_every_objective_composes_and_validates(name):
    cfg = compose_config([f"objective={name}"])
    validate(cfg)


def test_grpo_is_an_alias_of_rlvr():
    assert compose_config(["objective=grpo"]).objective == compose_config(["objective=rlvr"]).objective


@pytest.mark.parametrize(
    "preset,strategies",
    [
        ("none", ()),
        ("align", ("align",)),
        ("no_think", ("no_think",)),
        ("smooth", ("smooth",)),
        ("all", ("align", "no_think", "smooth")),
    ],
)
def test_reward_control_presets_are_lists_of_strategies(preset, strategies):
    rc = compose_config([f"reward_control={preset}"]).reward_control
    assert RewardControl.from_config(rc).names == strategies and rc.name == preset


def test_a_preset_takes_a_list_of_strategies_on_the_command_line():
    rc = compose_config(["reward_control.strategies=[smooth,align]", "reward_control.smooth.mode=clamp"])
    control = RewardControl.from_config(rc.reward_control)
    assert control.names == ("smooth", "align") and control.strategies[0].mode == "clamp"
    with pytest.raises(ConfigError, match="unknown reward-control strategy 'typo'"):
        validate(compose_config(["reward_control.strategies=[align,typo]"]))


def test_experiment_smoke_needs_no_plus():
    cfg = compose_config(["experiment=smoke", "objective=sft"])
    assert cfg.trainer.max_steps == 2 and cfg.model.name == "tiny" and cfg.objective.name == "sft"


@pytest.mark.parametrize(
    "override,field",
    [
        ("rollout.num_generations=0", "rollout.num_generations"),
        ("optim.lr=-0.001", "optim.lr"),
        ("rollout.max_new_tokens=0", "rollout.max_new_tokens"),
        ("reward_control.smooth.clamp=-1", "reward_control.smooth.clamp"),
        ("objective.loss_aggregation=mean", "objective.loss_aggregation"),
        ("objective.scale_rewards=rank", "objective.scale_rewards"),
        ("rollout.top_p=1.5", "rollout.top_p"),
        ("objective.mu=0", "objective.mu"),
        ("data.on_bad_row=ignore", "data.on_bad_row"),
        ("model.frame=100", "model.frame"),
        ("model.freeze_vision_tower=maybe", "model.freeze_vision_tower"),
        ("model.base.freeze_vision_tower=maybe", "model.base.freeze_vision_tower"),
        # non-finite numbers, bools as numbers, ranges
        ("optim.lr=inf", "optim.lr"),
        ("optim.lr=nan", "optim.lr"),
        ("optim.lr=true", "optim.lr"),
        ("rollout.temperature=inf", "rollout.temperature"),
        ("objective.epsilon_low=2", "objective.epsilon_low"),
        ("objective.epsilon_high=1", "objective.epsilon_high"),
        ("objective.beta=inf", "objective.beta"),
        ("train.micro_batch_size=-1", "train.micro_batch_size"),
        ("eval.every_n_batches=-1", "eval.every_n_batches"),
        ("eval.num_examples=2.5", "eval.num_examples"),
        ("rollout.num_generations=1", "rollout.num_generations"),
        ("objective=sft_rlvr rollout.num_generations=1", "rollout.num_generations"),
        ("model.base.lr=inf", "model.base.lr"),
        ("data.synth.num_train=0", "data.synth.num_train"),
        ("data.synth.grid=-1", "data.synth"),
        # enums, checked against what the builders use, before anything is built
        ("reward.name=nope", "reward.name"),
        ("+reward.kwargs.nope=1", "reward.kwargs"),
        ("optim.schedule=foo", "optim.schedule"),
        ("optim.min_lr_ratio=1.5", "optim.min_lr_ratio"),
        ("model.base.min_lr_ratio=-0.1", "model.base.min_lr_ratio"),
        ("+model.base.weight_decay=-1", "model.base.weight_decay"),
        ("optim.name=lion", "optim.name"),
        ("optim.momentum=1", "optim.momentum"),
        ("optim.betas=[2,3]", "optim.betas[0]"),
        ("optim.betas=[0.9]", "optim.betas"),
        ("trainer.precision=foo", "trainer.precision"),
        ("model.dtype=foo", "model.dtype"),
        ("resume_pick=first", "resume_pick"),
        ("logging.samples_every=-1", "logging.samples_every"),
        ("logging.wandb=maybe", "logging.wandb"),
        ("logging.mlflow=1", "logging.mlflow"),
        # types
        ("seed=abc", "seed"),
        ("seed=-5", "seed"),
        ("seed=true", "seed"),
        ("model.frame=abc", "model.frame"),
        ("data=local", "data.path"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.").replace("[", r"\[")):
        validate(compose_config(override.split()))


def test_one_sample_per_prompt_is_fine_for_sft():
    validate(compose_config(["objective=sft", "rollout.num_generations=1"]))  # SFT samples nothing
