"""What a run is called: `<objective>[_<reward control>[_<injection>]]_s<seed>`.

A reward control and an injection preset act on the injected label only, so they are part of a
run's identity (its name, summary.json, the report's and compare's keys) only when some stage of
the objective injects the label (ViSurf); SFT and RLVR runs carry neither. The injection preset
is named only when it is not ViSurf's own (`injection=visurf`, the default), so ViSurf runs keep
their names and an injection sweep is one multirun.
"""

from __future__ import annotations

import re

from omegaconf import OmegaConf

from visurf.objectives.registry import injects_label

DEFAULT_INJECTION = "visurf"


def reward_control_of(cfg) -> str | None:
    """The reward-control preset that acts in this run, or None when no stage injects the label."""
    return str(cfg.reward_control.name) if injects_label(cfg.objective) else None


def injection_of(cfg) -> str | None:
    """The injection preset that acts in this run (None when no stage injects the label; a
    config from before the injection group is ViSurf's)."""
    if not injects_label(cfg.objective):
        return None
    injection = cfg.get("injection")
    return str(injection.name) if injection is not None else DEFAULT_INJECTION


def run_name(cfg) -> str:
    control, injection = reward_control_of(cfg), injection_of(cfg)
    parts = [str(cfg.objective.name), *([control] if control else [])]
    if injection not in (None, DEFAULT_INJECTION):
        parts.append(injection)
    return "_".join([*parts, f"s{cfg.seed}"])


def parse_job_folder(folder: str) -> tuple[str, int] | None:
    """(run name without its seed, seed) of a multirun job's folder `<job number>_<run name>`
    (conf/config.yaml's `hydra.sweep.subdir`): `3_visurf_all_s3` -> ("visurf_all", 3); None for
    any other folder name."""
    match = re.fullmatch(r"\d+_(.+)_s(\d+)", folder)
    return (match.group(1), int(match.group(2))) if match else None


def register_resolvers() -> None:
    """`${visurf.run_name:}` for Hydra's run and sweep directories (conf/config.yaml)."""
    if not OmegaConf.has_resolver("visurf.run_name"):
        OmegaConf.register_new_resolver("visurf.run_name", lambda *, _root_: run_name(_root_))
