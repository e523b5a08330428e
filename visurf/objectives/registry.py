"""Stage kinds by name: the one place that knows which kinds exist and what a stage spec holds.

An objective (`conf/objective/*.yaml`) is a list of stage specs, each `{kind, fraction, ...}`.
A stage class registers its kind with `@register_stage("kind")`; it builds itself from its spec
(`from_config(spec, cfg)`), names the extra spec keys it reads (`spec_keys`), and says how the
start block calls it (`title(spec)`). Nothing here imports torch: the run name is read from a
config before anything is built.
"""

from __future__ import annotations

from visurf.config.registry import Registry

STAGES = Registry("stage kind")
COMMON_SPEC_KEYS = ("kind", "fraction")  # every stage spec may hold these


def register_stage(kind: str):
    """Class decorator: the stage class of `kind` (recorded as `cls.kind`)."""

    def decorate(cls: type) -> type:
        cls.kind = kind
        return STAGES.register(kind)(cls)

    return decorate


def injects_label(objective_cfg) -> bool:
    """Whether some stage of the objective injects the ground-truth label into its groups
    (ViSurf): only then do a reward control and an injection preset act in the run."""
    return any(bool(spec.get("inject_label", False)) for spec in objective_cfg.stages)
