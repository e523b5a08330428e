"""What a run is called: `<objective>[_<reward control>]_s<seed>`.

A reward control acts on the injected label only, so it is part of a run's name and summary only
when some stage of the objective injects the label (ViSurf); SFT and RLVR runs carry none.
"""

from __future__ import annotations

from omegaconf import OmegaConf


def reward_control_of(cfg) -> str | None:
    """The reward-control preset that acts in this run, or None when no stage injects the label."""
    injects = any(
        stage.get("kind") == "policy" and bool(stage.get("inject_label", False))
        for stage in cfg.objective.stages
    )
    return str(cfg.reward_control.name) if injects else None


def run_name(cfg) -> str:
    control = reward_control_of(cfg)
    return "_".join([str(cfg.objective.name), *([control] if control else []), f"s{cfg.seed}"])


def register_resolvers() -> None:
    """`${visurf.run_name:}` for Hydra's run and sweep directories (conf/config.yaml)."""
    if not OmegaConf.has_resolver("visurf.run_name"):
        OmegaConf.register_new_resolver("visurf.run_name", lambda *, _root_: run_name(_root_))
