"""Objectives as sequences of stages (conf/objective/*.yaml).

`sft` = one SFT stage; `rlvr`/`grpo` = one policy stage; `visurf` = one policy stage with the
label injected; `sft_rlvr` = an SFT stage, then a policy stage. The LightningModule asks the
schedule for the stage of the current step and knows nothing else about the objective. What a
stage is, and what it may use of the module, is declared in `visurf.objectives.stage`; stage
kinds are registered in `visurf.objectives.registry`.
"""

from __future__ import annotations

from visurf.objectives.experience import Experience
from visurf.objectives.policy import PolicyStage
from visurf.objectives.registry import STAGES, injects_label, register_stage
from visurf.objectives.sft import SFTStage
from visurf.objectives.stage import Stage, StageHost


class StageSchedule:
    """Stages with their first optimisation step: stage k runs from `starts[k]` on."""

    def __init__(self, stages: list[Stage], starts: list[int]):
        self.stages = stages
        self.starts = starts

    def index_at(self, step: int) -> int:
        return max(k for k, start in enumerate(self.starts) if start <= step)

    def at(self, step: int):
        return self.stages[self.index_at(step)]


def build_schedule(cfg) -> StageSchedule:
    max_steps = int(cfg.trainer.max_steps)
    stages, starts, start = [], [], 0
    for spec in cfg.objective.stages:
        stages.append(STAGES.get(spec.kind).from_config(spec, cfg))
        starts.append(start)
        if spec.get("fraction") is not None:
            start += round(float(spec.fraction) * max_steps)
    return StageSchedule(stages, starts)


__all__ = [
    "STAGES",
    "Experience",
    "PolicyStage",
    "SFTStage",
    "Stage",
    "StageHost",
    "StageSchedule",
    "build_schedule",
    "injects_label",
    "register_stage",
]
