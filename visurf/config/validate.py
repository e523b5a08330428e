"""Checks of a composed run config, before anything is built: run once per run.

Hydra already refuses unknown options of a config group (listing the valid ones); `validate`
refuses values that compose fine but make no sense: types, finite ranges, enums and
combinations, each refusal a one-line ConfigError naming the field, its value and what it must
be. Nothing here builds a model, a reward or a dataset; enums are read from the modules that
own them (the registries and tables the builders themselves use).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from omegaconf import OmegaConf

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
MAX_SEED = 2**32 - 1  # numpy's seed range (Lightning's seed_everything)


class ConfigError(ValueError):
    pass


def check(ok: bool, field: str, value, must: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r} is invalid: it must be {must}")


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """A finite int or float: true/false and inf/nan are not numbers here."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def get(cfg, field: str, default=None):
    node = cfg
    for part in field.split("."):
        if node is None or part not in node:
            return default
        node = node[part]
    return node


def integer(cfg, field: str, low: int, high: int | None = None, default=None) -> None:
    v = get(cfg, field, default)
    must = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    check(is_int(v) and v >= low and (high is None or v <= high), field, v, must)


def number(cfg, field: str, low: float, high: float | None = None, *, low_open=False, high_open=True):
    v = get(cfg, field)
    ok = is_number(v) and (v > low if low_open else v >= low)
    if high is not None:
        ok = ok and (v < high if high_open else v <= high)
    lo = "(" if low_open else "["
    must = (
        f"a finite number in {lo}{low:g}, {high:g}{')' if high_open else ']'}"
        if high is not None
        else (f"a finite number {'>' if low_open else '>='} {low:g}")
    )
    check(ok, field, v, must)


def boolean(cfg, field: str, default=False) -> None:
    v = get(cfg, field, default)
    check(isinstance(v, bool), field, v, "true or false")


def one_of(cfg, field: str, options, default=None) -> None:
    v = get(cfg, field, default)
    check(v in tuple(options), field, v, f"one of {list(options)}")


def validate(cfg) -> None:
    """Refuse a config that would fail or do nothing useful, naming the field.

    The config's `plugins` are imported first: what they register is a name the config may use."""
    from visurf.config.plugins import PluginError, load_plugins

    try:
        load_plugins(get(cfg, "plugins"))
    except PluginError as err:
        raise ConfigError(str(err)) from None
    integer(cfg, "seed", 0, MAX_SEED)
    _resume(cfg)
    _counts(cfg)
    _objective(cfg)
    _stages(cfg)
    _flags(cfg)
    _unused_objective_keys(cfg)
    _rollout(cfg)
    _optim(cfg)
    _trainer_and_logging(cfg)
    _reward(cfg)
    _model(cfg)
    _data(cfg)


def _resume(cfg) -> None:
    from visurf.runs.checkpoints import RESUME_PICKS

    resume = get(cfg, "resume")
    check(resume is None or (isinstance(resume, str) and resume.strip()), "resume", resume, "a path")
    one_of(cfg, "resume_pick", RESUME_PICKS, default="last")


def _counts(cfg) -> None:
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
        integer(cfg, field, 1)
    for field in ("train.micro_batch_size", "eval.every_n_batches", "eval.num_samples_logged"):
        integer(cfg, field, 0, default=0)
    for field in ("eval.num_examples", "optim.warmup_steps"):
        integer(cfg, field, 0)
    if get(cfg, "train.epochs") is not None:  # null: trainer.max_steps decides
        number(cfg, "train.epochs", 0, low_open=True)


def _rollout(cfg) -> None:
    number(cfg, "rollout.temperature", 0, low_open=True)
    number(cfg, "rollout.top_p", 0, 1, low_open=True, high_open=False)


def _objective(cfg) -> None:
    for field in ("objective.beta", "objective.epsilon_low", "objective.epsilon_high"):
        number(cfg, field, 0)
    for field in ("objective.epsilon_low", "objective.epsilon_high"):
        number(cfg, field, 0, 1)  # a clip range of 1 or more lets the ratio reach 0 or beyond
    for field in ("objective.mask_truncated", "objective.kl_on_label", "objective.sft_use_think"):
        boolean(cfg, field)
    from visurf.algorithms import ADVANTAGE_ESTIMATORS, AGGREGATIONS, SCALE_REWARDS

    one_of(cfg, "objective.advantage_estimator", ADVANTAGE_ESTIMATORS.names(), default="grpo")
    one_of(cfg, "objective.scale_rewards", SCALE_REWARDS)
    one_of(cfg, "objective.loss_aggregation", AGGREGATIONS)


def _stages(cfg) -> None:
    """Each stage spec names a registered kind and only the keys that kind reads; every stage but
    the last runs for a `fraction` of the steps."""
    from visurf.objectives import STAGES
    from visurf.objectives.registry import COMMON_SPEC_KEYS

    stages = list(get(cfg, "objective.stages") or [])
    check(len(stages) >= 1, "objective.stages", stages, "a non-empty list")
    total = 0.0
    for i, spec in enumerate(stages):
        kind = spec.get("kind")
        check(kind in STAGES, f"objective.stages[{i}].kind", kind, f"one of {sorted(STAGES)}")
        unknown = sorted(set(spec) - {*COMMON_SPEC_KEYS, *STAGES.get(kind).spec_keys})
        check(
            not unknown,
            f"objective.stages[{i}]",
            dict(spec),
            f"free of keys a {kind} stage does not read {unknown}",
        )
        inject = spec.get("inject_label", False)
        check(isinstance(inject, bool), f"objective.stages[{i}].inject_label", inject, "true or false")
        if i < len(stages) - 1:
            fraction = spec.get("fraction")
            check(
                is_number(fraction) and 0 < fraction < 1,
                f"objective.stages[{i}].fraction",
                fraction,
                "in (0, 1) for every stage but the last",
            )
            total += fraction
    check(total < 1, "objective.stages[].fraction", total, "a sum below 1")
    if any(spec.get("kind") == "policy" for spec in stages):
        g = get(cfg, "rollout.num_generations")
        check(
            is_int(g) and g >= 2,
            "rollout.num_generations",
            g,
            "an integer >= 2 for a policy objective: advantages are relative to the prompt's group, "
            "so with one sample each is 0",
        )


def _optim(cfg) -> None:
    from visurf.training.optim import OPTIMIZERS, SCHEDULES

    number(cfg, "optim.lr", 0, low_open=True)
    for field in ("optim.weight_decay", "optim.grad_clip"):
        number(cfg, field, 0)
    one_of(cfg, "optim.schedule", SCHEDULES, default="constant")
    if get(cfg, "optim.min_lr_ratio") is not None:
        number(cfg, "optim.min_lr_ratio", 0, 1, high_open=False)
    one_of(cfg, "optim.name", OPTIMIZERS, default="adamw")
    momentum = get(cfg, "optim.momentum", 0.9)
    check(is_number(momentum) and 0 <= momentum < 1, "optim.momentum", momentum, "a finite number in [0, 1)")
    betas = get(cfg, "optim.betas")
    betas = list(betas) if OmegaConf.is_list(betas) or isinstance(betas, (list, tuple)) else betas
    check(isinstance(betas, list) and len(betas) == 2, "optim.betas", betas, "a list of two numbers")
    for i, beta in enumerate(betas):
        check(is_number(beta) and 0 <= beta < 1, f"optim.betas[{i}]", beta, "a finite number in [0, 1)")


def _trainer_and_logging(cfg) -> None:
    from typing import get_args

    try:  # Lightning's own list of what Trainer(precision=...) accepts
        from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

        precisions = [p for group in get_args(_PRECISION_INPUT) for p in get_args(group)]
    except ImportError:  # pragma: no cover - a Lightning that moved it
        precisions = [64, 32, 16, "64", "32", "16", "bf16", "16-mixed", "bf16-mixed", "16-true", "bf16-true"]
        precisions += ["32-true", "64-true", "transformer-engine", "transformer-engine-float16"]
    one_of(cfg, "trainer.precision", precisions)
    one_of(cfg, "trainer.accelerator", ACCELERATORS)
    integer(cfg, "trainer.num_nodes", 1, default=1)
    integer(cfg, "logging.log_every_n_steps", 1)
    boolean(cfg, "logging.tensorboard")
    integer(cfg, "logging.samples_every", 0, default=0)
    for tracker, package in (("wandb", "wandb"), ("mlflow", "mlflow")):
        boolean(cfg, f"logging.{tracker}")
        if get(cfg, f"logging.{tracker}"):
            _importable(package, f"logging.{tracker}=true")
    boolean(cfg, "logging.wandb_offline", default=True)


def _importable(package: str, setting: str) -> None:
    from importlib.util import find_spec

    if find_spec(package) is None:
        raise ConfigError(
            f"{setting} needs the {package} package: pip install {package} (or visurf[tracking])"
        )


def _reward(cfg) -> None:
    from visurf.rewards import REWARDS  # the registry: importing it builds no reward

    name = get(cfg, "reward.name")
    one_of(cfg, "reward.name", sorted(REWARDS))
    kwargs = get(cfg, "reward.kwargs", {}) or {}
    check(isinstance(kwargs, Mapping), "reward.kwargs", kwargs, "a mapping of keyword arguments")
    kwargs = OmegaConf.to_container(kwargs) if OmegaConf.is_config(kwargs) else dict(kwargs)
    try:
        inspect.signature(REWARDS.get(name)).bind(**kwargs)
    except TypeError as err:
        raise ConfigError(f"reward.kwargs={kwargs!r} is invalid for reward {name!r}: {err}") from None
    for key, value in kwargs.items():
        if isinstance(value, float):
            check(math.isfinite(value), f"reward.kwargs.{key}", value, "a finite number")


def _model(cfg) -> None:
    from visurf.models.loading import DTYPES

    one_of(cfg, "model.dtype", list(DTYPES))
    boolean(cfg, "model.gradient_checkpointing")
    boolean(cfg, "model.freeze_vision_tower")
    _check_frame(cfg.model)
    attn = get(cfg, "model.attn_implementation")
    check(
        attn in (None, "sdpa", "eager", "flash_attention_2"),
        "model.attn_implementation",
        attn,
        "one of ['sdpa', 'eager', 'flash_attention_2']",
    )
    if attn == "flash_attention_2":
        import importlib.util

        check(
            importlib.util.find_spec("flash_attn") is not None,
            "model.attn_implementation",
            attn,
            "sdpa or eager here: flash_attention_2 needs the flash-attn package, which is not installed",
        )
    if get(cfg, "model.base") is None:
        return
    boolean(cfg, "model.base.freeze_vision_tower")
    for field in ("steps", "batch_size", "num_train"):
        integer(cfg, f"model.base.{field}", 1)
    integer(cfg, "model.base.seed", 0, MAX_SEED)
    integer(cfg, "model.base.warmup_steps", 0, default=20)
    number(cfg, "model.base.lr", 0, low_open=True)
    if get(cfg, "model.base.min_lr_ratio") is not None:  # optional: absent keeps the default base's key
        number(cfg, "model.base.min_lr_ratio", 0, 1, high_open=False)
    if get(cfg, "model.base.weight_decay") is not None:  # optional, as min_lr_ratio
        number(cfg, "model.base.weight_decay", 0)


def _data(cfg) -> None:
    from visurf.data.dataset import ON_BAD_ROW
    from visurf.data.sources import SOURCES

    one_of(cfg, "data.on_bad_row", ON_BAD_ROW)
    one_of(cfg, "data.source", SOURCES)
    integer(cfg, "data.num_workers", 0, default=0)
    _prompt_template(cfg)
    if get(cfg, "data.source") == "local":
        path = OmegaConf.select(cfg, "data.path", throw_on_missing=False)
        if OmegaConf.is_missing(cfg.data, "path") or not path:
            raise ConfigError("data.path is required with data=local: the folder or file of the dataset")
        return
    if get(cfg, "data.source") == "hub":
        hub_id = OmegaConf.select(cfg, "data.hub_id", throw_on_missing=False)
        if OmegaConf.is_missing(cfg.data, "hub_id") or not hub_id:
            raise ConfigError(
                "data.hub_id is required with data=hub: OWNER/NAME of a dataset in the local HF cache"
            )
        return
    if get(cfg, "data.source") != "synth":
        return
    synth = get(cfg, "data.synth")
    for field in ("num_train", "num_test"):
        integer(cfg, f"data.synth.{field}", 1)
    integer(cfg, "data.synth.num_val", 0, default=0)
    integer(cfg, "data.synth.seed", 0, MAX_SEED)
    from visurf.data.synth_config import world_config

    try:
        world_config(OmegaConf.to_container(synth, resolve=True))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"data.synth is invalid: {err}") from None


def _prompt_template(cfg) -> None:
    from visurf.data.prompt import template_text

    template = get(cfg, "data.prompt_template")
    if template is not None:
        try:
            template_text(template)
        except ValueError as err:
            raise ConfigError(f"data.prompt_template: {err}") from None


def _check_frame(model_cfg) -> None:
    """The frame is a multiple of the family's patch x merge (visurf.models.families): otherwise
    its processor resizes the image and the labels' coordinates no longer match it. A model whose
    family cannot be known before loading (a hub id not downloaded yet) is checked when it loads."""
    from visurf.models.families import configured_model_type, family_of

    model_type = configured_model_type(model_cfg)
    frame = model_cfg.frame
    check(is_int(frame) and frame > 0, "model.frame", frame, "a positive integer")
    if model_type is None:
        return
    try:
        multiple = family_of(model_type).frame_multiple
    except ValueError as err:
        raise ConfigError(f"model: {err}") from err
    check(
        frame % multiple == 0 and frame >= multiple,
        "model.frame",
        frame,
        f"a multiple of {multiple} ({model_type}: patch size x merge)",
    )
    _pixel_bounds(model_cfg, model_type)


def _pixel_bounds(model_cfg, model_type: str) -> None:
    """model.min_pixels / model.max_pixels: null (the checkpoint's own) or pixel counts that a
    frame x frame image lies within, for a family whose processor takes them."""
    from visurf.models.families import family_of

    bounds = {name: model_cfg.get(name) for name in ("min_pixels", "max_pixels")}
    for name, value in bounds.items():
        check(
            value is None or (is_int(value) and value > 0),
            f"model.{name}",
            value,
            "null or a positive integer",
        )
    low, high = bounds["min_pixels"], bounds["max_pixels"]
    if low is None and high is None:
        return
    if not family_of(model_type).pixel_bounds:
        name = "max_pixels" if high is not None else "min_pixels"
        check(False, f"model.{name}", bounds[name], f"null: the {model_type} processor takes no pixel bounds")
    check(
        low is None or high is None or low <= high, "model.min_pixels", low, f"<= model.max_pixels ({high})"
    )
    pixels = model_cfg.frame**2
    frame = f"the {model_cfg.frame}x{model_cfg.frame} frame's {pixels} pixels (else the processor resizes it)"
    check(high is None or pixels <= high, "model.max_pixels", high, f">= {frame}")
    check(low is None or pixels >= low, "model.min_pixels", low, f"<= {frame}")


def _flags(cfg) -> None:
    """reward_control and injection: checked by their own types, the one check of each flag."""
    from visurf.algorithms import Injection
    from visurf.objectives.registry import injects_label
    from visurf.reward_control import RewardControl

    try:
        RewardControl.from_config(cfg.reward_control)
        injection = Injection.from_config(cfg.get("injection"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    strategy = cfg.trainer.get("strategy")
    sharded = (strategy if isinstance(strategy, str) else (strategy or {}).get("name")) == "fsdp"
    # Under FSDP every forward pass is a collective; with labels only in failed groups, ranks
    # score different numbers of batches and would wait on each other for ever.
    check(
        not (sharded and injects_label(cfg.objective) and injection.when == "on_failure"),
        "injection.when",
        injection.when,
        "always under trainer=fsdp (on_failure gives ranks different numbers of forward passes)",
    )


# Keys of conf/objective/rlvr.yaml that only a policy stage reads, and those only an SFT stage reads.
_SFT_ONLY = ("sft_use_think",)


def _unused_objective_keys(cfg) -> None:
    """Refuse an objective key set away from its default where no stage reads it (objective.mu=4
    under objective=sft would otherwise pass and do nothing)."""
    from visurf.config.paths import CONF_DIR

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
