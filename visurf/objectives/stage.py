"""The stage contract: what a stage is, and all it may use of the module that runs it.

A stage turns a batch of examples into an `Experience` (no gradient) and an `Experience` into a
loss (one or more passes). The LightningModule (`visurf.training.module.PostTrainModule`) is its host: it
hands the stage exactly the members of `StageHost` and nothing else, so a stage never depends on
how the module trains, logs or checkpoints. `tests/meta/test_stage_contract.py` checks both sides:
the module provides every member, and the stages use no other.

An objective made of existing stage kinds is one YAML (`conf/objective/`). A new stage kind is a
class with the members of `Stage` (see `SFTStage`, the smallest) in its own file, registered
with `@register_stage("kind")` and imported in `visurf/objectives/__init__.py`
(docs/extending.md has a worked example).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from visurf.objectives.experience import Experience
from visurf.rewards.registry import Reward


@runtime_checkable
class StageHost(Protocol):
    """What a stage may use of the module running it."""

    policy: torch.nn.Module  # the model being trained (under FSDP, the sharded root)
    processor: Any  # visurf.models.processing.VLProcessor: prompts in, token ids out
    reward_fn: Reward  # completion, solution, width, height -> {component: score, "total", "correct"}
    micro_batch_size: int  # rows per forward pass when scoring tokens (0: all at once)

    @property
    def device(self) -> torch.device: ...

    def to_device(self, inputs: dict) -> dict:
        """The tensors of a processor batch, moved to the policy's device."""
        ...

    def reference_logps(self, seqs, temperature: float = 1.0) -> torch.Tensor:
        """[N, C] log-probabilities of the completion tokens under the frozen KL reference, at
        `temperature` (a policy stage passes its sampling temperature)."""
        ...

    def reset_reference(self) -> None:
        """The KL reference becomes the policy as it is now."""
        ...


@runtime_checkable
class Stage(Protocol):
    kind: str  # its name in the registry (set by @register_stage): "sft", "policy", ...
    passes: int  # optimisation passes over one Experience
    spec_keys: tuple[str, ...]  # the keys its spec may hold beside `kind` and `fraction`

    @classmethod
    def from_config(cls, spec, cfg) -> Stage:
        """The stage of this spec (one entry of `objective.stages`) in the run config `cfg`."""
        ...

    @staticmethod
    def title(spec) -> str:
        """How the run's start block names the stage of this spec ("SFT", "ViSurf", ...)."""
        ...

    def on_start(self, host: StageHost) -> None:
        """Called once when the schedule reaches this stage (e.g. to reset the KL reference)."""
        ...

    def experience(self, host: StageHost, examples: list) -> Experience:
        """Collect (no gradient): completions, rewards, advantages, the loss mask."""
        ...

    def loss(self, host: StageHost, exp: Experience) -> tuple[torch.Tensor, dict]:
        """The loss of one pass over `exp`, and the statistics to log."""
        ...


def protocol_members(protocol: type) -> frozenset[str]:
    """The names a Protocol declares: its annotated attributes, properties and methods."""
    declared = {n for n, v in vars(protocol).items() if callable(v) or isinstance(v, property)}
    return frozenset({*protocol.__annotations__, *declared} - {n for n in declared if n.startswith("_")})
