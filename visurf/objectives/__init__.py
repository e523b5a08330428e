"""Objectives as sequences of stages (conf/objective/*.yaml).

`sft` = one SFT stage; `rlvr`/`grpo` = one policy stage; `visurf` = one policy stage with the
label injected; `sft_rlvr` = an SFT stage, then a policy stage. The LightningModule asks the
schedule for the stage of the current step and knows nothing else about the objective. What a
stage is, and what it may use of the module, is declared in `visurf.objectives.stage`.
"""

from __future__ import annotations

from visurf.algorithms import Injection
from visurf.objectives.experience import Experience
from visurf.objectives.policy import PolicyStage
from visurf.objectives.sft import SFTStage
from visurf.objectives.stage import Stage, StageHost
from visurf.reward_control import RewardControl


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
    objective = cfg.objective
    control = RewardControl.from_config(cfg.reward_control)
    max_steps = int(cfg.trainer.max_steps)
    stages, starts, start = [], [], 0
    for spec in objective.stages:
        if spec.kind == "sft":
            stage = SFTStage(use_think=bool(objective.sft_use_think))
        elif spec.kind == "policy":
            injection = Injection.from_config(cfg.get("injection"))
            stage = PolicyStage(objective, cfg.rollout, control, bool(spec.inject_label), injection)
        else:
            raise ValueError(f"objective.stages[].kind must be 'sft' or 'policy', got {spec.kind!r}")
        stages.append(stage)
        starts.append(start)
        if spec.get("fraction") is not None:
            start += round(float(spec.fraction) * max_steps)
    return StageSchedule(stages, starts)


__all__ = ["Experience", "PolicyStage", "SFTStage", "Stage", "StageHost", "StageSchedule", "build_schedule"]
