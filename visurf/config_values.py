"""Every value of a run config checked before anything is built: types, finite ranges, enums.

`visurf.config.validate` calls `validate_values`; each refusal is a one-line ConfigError naming
the field, its value and what it must be. Nothing here builds a model, a reward or a dataset:
enums are read from the registries and tables that the builders themselves use.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping

from omegaconf import OmegaConf

SCHEDULES = ("constant", "cosine")  # visurf.module.lr_factor
OPTIMIZERS = ("adamw", "sgd")  # visurf.module.build_optimizer
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


def validate_values(cfg) -> None:
    """Refuse any value the checks in visurf.config do not cover, naming the field."""
    integer(cfg, "seed", 0, MAX_SEED)
    resume = get(cfg, "resume")
    check(resume is None or (isinstance(resume, str) and resume.strip()), "resume", resume, "a path")
    one_of(cfg, "resume_pick", ("last", "newest_intact"), default="last")  # visurf.checkpoints.RESUME_PICKS
    _objective(cfg)
    _optim(cfg)
    _trainer_and_logging(cfg)
    integer(cfg, "train.micro_batch_size", 0, default=0)
    integer(cfg, "eval.every_n_batches", 0, default=0)
    integer(cfg, "eval.num_samples_logged", 0, default=0)
    integer(cfg, "eval.num_examples", 0)
    integer(cfg, "optim.warmup_steps", 0)
    _reward(cfg)
    _model(cfg)
    _data(cfg)


def _objective(cfg) -> None:
    for field in ("objective.epsilon_low", "objective.epsilon_high"):
        number(cfg, field, 0, 1)  # a clip range of 1 or more lets the ratio reach 0 or beyond
    for field in ("objective.mask_truncated", "objective.kl_on_label", "objective.sft_use_think"):
        boolean(cfg, field)
    for flag in ("align", "no_think", "smooth"):
        boolean(cfg, f"reward_control.{flag}")
    stages = list(get(cfg, "objective.stages") or [])
    for i, stage in enumerate(stages):
        inject = stage.get("inject_label", False)
        check(isinstance(inject, bool), f"objective.stages[{i}].inject_label", inject, "true or false")
    if any(s.get("kind") == "policy" for s in stages):
        g = get(cfg, "rollout.num_generations")
        check(
            is_int(g) and g >= 2,
            "rollout.num_generations",
            g,
            "an integer >= 2 for a policy objective: advantages are relative to the prompt's group, "
            "so with one sample each is 0",
        )


def _optim(cfg) -> None:
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


def _reward(cfg) -> None:
    from visurf.rewards import REWARDS  # the registry: importing it builds no reward

    name = get(cfg, "reward.name")
    one_of(cfg, "reward.name", sorted(REWARDS))
    kwargs = get(cfg, "reward.kwargs", {}) or {}
    check(isinstance(kwargs, Mapping), "reward.kwargs", kwargs, "a mapping of keyword arguments")
    kwargs = OmegaConf.to_container(kwargs) if OmegaConf.is_config(kwargs) else dict(kwargs)
    try:
        inspect.signature(REWARDS[name]).bind(**kwargs)
    except TypeError as err:
        raise ConfigError(f"reward.kwargs={kwargs!r} is invalid for reward {name!r}: {err}") from None
    for key, value in kwargs.items():
        if isinstance(value, float):
            check(math.isfinite(value), f"reward.kwargs.{key}", value, "a finite number")


def _model(cfg) -> None:
    from visurf.models.loading import DTYPES

    one_of(cfg, "model.dtype", list(DTYPES))
    boolean(cfg, "model.gradient_checkpointing")
    if get(cfg, "model.base") is None:
        return
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
    if get(cfg, "data.source") == "local":
        path = OmegaConf.select(cfg, "data.path", throw_on_missing=False)
        if OmegaConf.is_missing(cfg.data, "path") or not path:
            raise ConfigError("data.path is required with data=local: the folder or file of the dataset")
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
