"""A config group holds only what applies: keys no stage reads are refused, and a run is named
(and summarised) with a reward control only where the label is injected."""

from __future__ import annotations

import re

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from visurf.config.compose import compose_config
from visurf.config.paths import CONF_DIR
from visurf.config.validate import ConfigError, validate
from visurf.runs.naming import register_resolvers, reward_control_of, run_name


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["objective=sft", "objective.mu=4"], "objective.mu"),
        (["objective=sft", "objective.beta=0.1"], "objective.beta"),
        (["objective=sft", "objective.loss_aggregation=grpo"], "objective.loss_aggregation"),
        (["objective=rlvr", "objective.sft_use_think=true"], "objective.sft_use_think"),
        (["objective=visurf", "objective.sft_use_think=true"], "objective.sft_use_think"),
    ],
)
def test_a_key_no_stage_reads_is_refused(overrides, field):
    with pytest.raises(ConfigError, match=re.escape(field) + "=.* has no effect"):
        validate(compose_config(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["objective=sft", "objective.sft_use_think=true"],
        ["objective=rlvr", "objective.mu=2", "objective.beta=0.1"],
        ["objective=sft_rlvr", "objective.mu=2", "objective.sft_use_think=true"],  # both stage kinds
        ["objective=sft", "objective.mu=1"],  # the default value is no override
    ],
)
def test_keys_a_stage_reads_pass(overrides):
    validate(compose_config(overrides))


@pytest.mark.parametrize(
    "overrides, name, control",
    [
        (["objective=sft"], "sft_s0", None),
        (["objective=rlvr", "seed=2"], "rlvr_s2", None),
        (["objective=grpo"], "rlvr_s0", None),
        (["objective=sft_rlvr"], "sft_rlvr_s0", None),
        (["objective=visurf", "reward_control=smooth"], "visurf_smooth_s0", "smooth"),
        (["objective=visurf", "objective.stages.0.inject_label=false"], "visurf_s0", None),
    ],
)
def test_a_reward_control_is_named_only_where_the_label_is_injected(overrides, name, control):
    cfg = compose_config(overrides)
    assert (run_name(cfg), reward_control_of(cfg)) == (name, control)


def test_hydra_names_the_run_directory_by_it():
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        sft = compose(config_name="config", overrides=["objective=sft"], return_hydra_config=True)
        visurf = compose(config_name="config", return_hydra_config=True)
    assert OmegaConf.select(sft, "hydra.run.dir").endswith("_sft_s0")
    assert OmegaConf.select(visurf, "hydra.run.dir").endswith("_visurf_all_s0")
