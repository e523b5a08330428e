"""Checks of a composed run config, before any model is built.

Hydra already refuses unknown options of a config group (listing the valid ones); this refuses
values that compose fine but make no sense, naming the field.
"""

from __future__ import annotations

from visurf.algorithms import AGGREGATIONS, SCALE_REWARDS, Injection
from visurf.config_values import ConfigError, validate_values
from visurf.config_values import is_int as _is_int
from visurf.config_values import is_number as _is_number
from visurf.reward_control import RewardControl

__all__ = ["ConfigError", "validate"]


def _check(ok: bool, field: str, value, must: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r} is invalid: it must be {must}")


def _number(cfg, field: str):
    node = cfg
    for part in field.split("."):
        node = node[part]
    return node


def validate(cfg) -> None:
    def positive_int(field):
        v = _number(cfg, field)
        _check(_is_int(v) and v >= 1, field, v, "an integer >= 1")

    def non_negative(field):
        v = _number(cfg, field)
        _check(_is_number(v) and v >= 0, field, v, "a finite number >= 0")

    for field in (
        "rollout.num_generations",
        "rollout.max_new_tokens",
        "trainer.max_steps",
        "train.batch_size",
        "train.checkpoint_every",
        "train.max_skipped_steps",
        "eval.batch_size",
        "eval.max_new_tokens",
        "objective.mu",
        "trainer.devices",
    ):
        positive_int(field)
    for field in (
        "objective.beta",
        "objective.epsilon_low",
        "objective.epsilon_high",
        "optim.weight_decay",
        "optim.warmup_steps",
        "eval.num_examples",
        "optim.grad_clip",
    ):
        non_negative(field)
    lr = cfg.optim.lr
    _check(_is_number(lr) and lr > 0, "optim.lr", lr, "a finite number > 0")
    t = cfg.rollout.temperature
    _check(_is_number(t) and t > 0, "rollout.temperature", t, "a finite number > 0")
    p = cfg.rollout.top_p
    _check(_is_number(p) and 0 < p <= 1, "rollout.top_p", p, "in (0, 1]")
    _check(
        cfg.objective.scale_rewards in SCALE_REWARDS,
        "objective.scale_rewards",
        cfg.objective.scale_rewards,
        f"one of {list(SCALE_REWARDS)}",
    )
    _check(
        cfg.objective.loss_aggregation in AGGREGATIONS,
        "objective.loss_aggregation",
        cfg.objective.loss_aggregation,
        f"one of {list(AGGREGATIONS)}",
    )
    _check(
        cfg.data.on_bad_row in ("error", "skip"),
        "data.on_bad_row",
        cfg.data.on_bad_row,
        "one of ['error', 'skip']",
    )
    _check(cfg.data.source in ("synth", "local"), "data.source", cfg.data.source, "one of ['synth', 'local']")
    _check_frame(cfg.model)
    attn = cfg.model.get("attn_implementation")
    _check(
        attn in (None, "sdpa", "eager", "flash_attention_2"),
        "model.attn_implementation",
        attn,
        "one of ['sdpa', 'eager', 'flash_attention_2']",
    )
    if attn == "flash_attention_2":
        import importlib.util

        _check(
            importlib.util.find_spec("flash_attn") is not None,
            "model.attn_implementation",
            attn,
            "sdpa or eager here: flash_attention_2 needs the flash-attn package, which is not installed",
        )
    freeze = cfg.model.get("freeze_vision_tower", False)
    _check(isinstance(freeze, bool), "model.freeze_vision_tower", freeze, "true or false")
    if cfg.model.get("base") is not None:
        freeze = cfg.model.base.get("freeze_vision_tower", False)
        _check(isinstance(freeze, bool), "model.base.freeze_vision_tower", freeze, "true or false")
    stages = list(cfg.objective.stages)
    _check(len(stages) >= 1, "objective.stages", stages, "a non-empty list")
    total = 0.0
    for i, stage in enumerate(stages):
        _check(
            stage.kind in ("sft", "policy"), f"objective.stages[{i}].kind", stage.kind, "'sft' or 'policy'"
        )
        fraction = stage.get("fraction")
        if i < len(stages) - 1:
            _check(
                _is_number(fraction) and 0 < fraction < 1,
                f"objective.stages[{i}].fraction",
                fraction,
                "in (0, 1) for every stage but the last",
            )
            total += fraction
    _check(total < 1, "objective.stages[].fraction", total, "a sum below 1")
    _flags(cfg)
    _unused_objective_keys(cfg)
    validate_values(cfg)  # every other value: types, finite ranges, enums


def _check_frame(model_cfg) -> None:
    """The frame is a multiple of the family's patch x merge (28 for Qwen2/2.5-VL, 32 for Qwen3-VL):
    otherwise its processor resizes the image and the labels' coordinates no longer match it."""
    from visurf.models.families import configured_model_type, family_of

    model_type = configured_model_type(model_cfg)
    try:
        multiple = family_of(model_type).frame_multiple if model_type else 28
    except ValueError as err:
        raise ConfigError(f"model: {err}") from err
    frame = model_cfg.frame
    _check(
        _is_int(frame) and frame % multiple == 0 and frame >= multiple,
        "model.frame",
        frame,
        f"a multiple of {multiple} ({model_type or 'Qwen2.5-VL'}: patch size x merge)",
    )


def _flags(cfg) -> None:
    """reward_control and injection: checked by their own types, the one check of each flag."""
    try:
        RewardControl.from_config(cfg.reward_control)
        injection = Injection.from_config(cfg.get("injection"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    strategy = cfg.trainer.get("strategy")
    sharded = (strategy if isinstance(strategy, str) else (strategy or {}).get("name")) == "fsdp"
    injects = any(stage.get("inject_label", False) for stage in cfg.objective.stages)
    # Under FSDP every forward pass is a collective; with labels only in failed groups, ranks
    # score different numbers of batches and would wait on each other for ever.
    _check(
        not (sharded and injects and injection.when == "on_failure"),
        "injection.when",
        injection.when,
        "always under trainer=fsdp (on_failure gives ranks different numbers of forward passes)",
    )


# Keys of conf/objective/rlvr.yaml that only a policy stage reads, and those only an SFT stage reads.
_SFT_ONLY = ("sft_use_think",)


def _unused_objective_keys(cfg) -> None:
    """Refuse an objective key set away from its default where no stage reads it (objective.mu=4
    under objective=sft would otherwise pass and do nothing)."""
    from omegaconf import OmegaConf

    from visurf.paths import CONF_DIR

    defaults = OmegaConf.load(CONF_DIR / "objective" / "rlvr.yaml")
    kinds = {stage.kind for stage in cfg.objective.stages}
    for key, default in defaults.items():
        if key in ("name", "stages") or key not in cfg.objective:
            continue
        reader = "sft" if key in _SFT_ONLY else "policy"
        value = cfg.objective[key]
        if reader not in kinds and value != default:
            what = "an SFT stage" if reader == "sft" else "a policy (RL) stage"
            raise ConfigError(
                f"objective.{key}={value!r} has no effect: objective={cfg.objective.name} has no stage that "
                f"reads it (only {what} does); drop the override"
            )
