"""Lightning strategies from `trainer=` configs (cpu, gpu, ddp, fsdp), and what FSDP needs besides.

FSDP layout (docs/distributed.md): `PostTrainModule.configure_model` calls `shard_policy`, so the
policy itself becomes the FSDP root with every decoder / vision block a nested unit. Lightning
then leaves the LightningModule unwrapped and `training_step` runs outside any FSDP forward, which
manual optimisation needs: with Lightning's default (the root wraps the LightningModule), a
`manual_backward` inside `training_step` trips FSDP's state checks (Lightning issue #19626).
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager, nullcontext
from datetime import timedelta

import torch
from omegaconf import DictConfig, OmegaConf

DDP_KEYS = {"name", "find_unused_parameters", "process_group_backend", "timeout_s"}
FSDP_KEYS = {
    "name",
    "sharding_strategy",
    "wrap_blocks",  # import paths of block classes, or auto: the model's _no_split_modules
    "activation_checkpointing",
    "cpu_offload",
    "state_dict_type",
    "process_group_backend",
    "timeout_s",
}


def build_strategy(trainer_cfg):
    """The `strategy` argument of `lightning.Trainer` for this trainer config.

    `trainer.strategy` is a Lightning strategy name (`auto`, `ddp`, ...) or a block with a `name`
    (`ddp` or `fsdp`) and that strategy's options.
    """
    spec = trainer_cfg.strategy
    if not isinstance(spec, (dict, DictConfig)):
        return str(spec)
    options = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else dict(spec)
    name = options.get("name")
    builders = {"ddp": (_ddp, DDP_KEYS), "fsdp": (_fsdp, FSDP_KEYS)}
    if name not in builders:
        raise ValueError(f"trainer.strategy.name={name!r} is invalid: it must be one of {sorted(builders)}")
    build, keys = builders[name]
    unknown = sorted(set(options) - keys)
    if unknown:  # a typo would otherwise be silently ignored
        raise ValueError(f"trainer.strategy: unknown option(s) {unknown} for {name}; known: {sorted(keys)}")
    return build(options)


def _timeout(options: dict) -> timedelta:
    return timedelta(seconds=float(options.get("timeout_s", 1800)))


def _ddp(options: dict):
    from lightning.pytorch.strategies import DDPStrategy

    return DDPStrategy(
        find_unused_parameters=bool(options.get("find_unused_parameters", False)),
        process_group_backend=options.get("process_group_backend"),  # None: nccl on GPU, gloo on CPU
        timeout=_timeout(options),
    )


def import_class(path: str) -> type:
    """`package.module.Class` → the class (wrap_blocks name classes by import path)."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"trainer.strategy.wrap_blocks: cannot import {path!r} ({err})") from err


def no_split_policy():
    """FSDP units read from the model itself: every module whose class the model names in its
    `_no_split_modules` (its decoder and vision blocks, in any family). The classes are looked up
    when FSDP first applies the policy to the root model (wrapping or activation checkpointing)."""
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from visurf.models.families import block_classes

    class NoSplitModulesPolicy(ModuleWrapPolicy):
        def __init__(self):
            super().__init__(())

        def _resolve(self, root) -> None:
            if not self._module_classes:
                self._module_classes = block_classes(root)
                self._module_classes_str = str(self._module_classes)
            if not self._module_classes:
                raise ValueError(
                    f"trainer.strategy.wrap_blocks=auto: {type(root).__name__} names no _no_split_modules; "
                    "list the block classes in trainer.strategy.wrap_blocks"
                )

        def _run_policy(self, root_module, ignored_modules, root_kwargs):
            self._resolve(root_module)
            return super()._run_policy(root_module, ignored_modules, root_kwargs)

        def __call__(self, module, recurse, *args, **kwargs):
            self._resolve(module)  # the first call is the root's
            return super().__call__(module, recurse, *args, **kwargs)

        def __reduce__(self):  # picklable (spawned processes): a fresh policy, resolved on its root
            return no_split_policy, ()

    return NoSplitModulesPolicy()


def _fsdp(options: dict):
    from lightning.pytorch.strategies import FSDPStrategy

    spec = options.get("wrap_blocks", [])
    if spec == "auto":
        blocks = no_split_policy()
    else:
        blocks = {import_class(p) for p in spec}
        if not blocks:
            raise ValueError(
                "trainer.strategy.wrap_blocks must name at least one module class for fsdp, or be auto "
                "(the model's _no_split_modules)"
            )
    return FSDPStrategy(
        auto_wrap_policy=blocks,  # Lightning turns a set of classes into a ModuleWrapPolicy
        activation_checkpointing_policy=blocks if options.get("activation_checkpointing") else None,
        sharding_strategy=str(options.get("sharding_strategy", "FULL_SHARD")),
        cpu_offload=bool(options.get("cpu_offload", False)),
        state_dict_type=str(options.get("state_dict_type", "full")),
        process_group_backend=options.get("process_group_backend"),
        timeout=_timeout(options),
    )


# -- FSDP helpers for the module, the evaluator and the recipe (no-ops without FSDP) ------------


def is_sharded(policy) -> bool:
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(policy, FullyShardedDataParallel)


def shard_policy(policy):
    """The policy as an FSDP root, when called inside Lightning's FSDP `model_sharded_context`.

    Lightning enters that context around `configure_model` with the strategy's settings (wrap
    policy, sharding, mixed precision, device); `wrap` outside it returns the policy unchanged, so
    cpu / gpu / ddp runs are untouched.
    """
    from torch.distributed.fsdp.wrap import wrap

    return policy if is_sharded(policy) else wrap(policy)


def _policy(module):
    """The policy of a PostTrainModule, or the model itself (the evaluator passes a policy)."""
    return getattr(module, "policy", module)


@contextmanager
def generation_context(module):
    """Wrap every `generate` (rollouts, evaluation) in this; it yields extra `generate` kwargs.

    Under FSDP (docs/distributed.md, "Generation"):
    - `generate` runs the inner model, never the root's forward, so the root unit's own parameters
      (embeddings, LM head, final norm, vision merger) are gathered for the call; each block
      gathers its shard in its own forward and frees it after (peak: root + one block).
      `recurse=True` buys nothing: blocks re-shard after each forward anyway (measured), and
      forwards of summoned blocks are unsupported in torch;
    - `synced_gpus`: each decode step is a collective and ranks finish at different steps, so
      every rank keeps stepping until all are done;
    - under mixed precision the gathered root parameters stay full precision while the blocks
      compute in low precision, hence autocast to the blocks' dtype.
    """
    policy = _policy(module)
    if not is_sharded(policy):
        yield {}
        return
    from torch.distributed.fsdp import FullyShardedDataParallel

    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    param = next(policy.parameters())
    low = policy.mixed_precision.param_dtype  # None: no mixed precision
    mixed = low is not None and low != param.dtype
    autocast = torch.autocast(param.device.type, dtype=low) if mixed else nullcontext()
    with FullyShardedDataParallel.summon_full_params(policy, recurse=False, writeback=False), autocast:
        yield {"synced_gpus": world > 1}


def clip_grad_norm(policy, params, max_norm: float) -> torch.Tensor:
    """Clip gradients by their global norm; under FSDP each rank holds a shard of every gradient,
    so the norm must come from the root (torch's clip_grad_norm_ would see one shard)."""
    if is_sharded(policy):
        return policy.clip_grad_norm_(max_norm)  # inf: measure without clipping
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def full_state_dict(policy) -> dict | None:
    """The policy's full (unsharded) state dict for `save_pretrained`, on CPU.

    Collective under FSDP: every rank must call it; rank 0 gets the dict, the others None. Without
    FSDP it returns None (save the policy as it is).
    """
    if not is_sharded(policy):
        return None
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    # Gathered to CPU so a model larger than one GPU's free memory still saves; on a CPU run
    # offloading is pointless (and crashes in torch's clone of the offloaded tensors).
    offload = next(policy.parameters()).device.type != "cpu"
    config = FullStateDictConfig(offload_to_cpu=offload, rank0_only=True)
    with FSDP.state_dict_type(policy, StateDictType.FULL_STATE_DICT, config):
        state = policy.state_dict()
    return state if torch.distributed.get_rank() == 0 else None
