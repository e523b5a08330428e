"""One evaluation as one readable log line (the full metrics go to metrics.csv and summary.json)."""

from __future__ import annotations

from visurf.data.groups import GROUPS, label


def _num(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def eval_line(tag: str, step: int, metrics: dict, change: dict | None = None) -> str:
    """`eval after (step 60, 500 questions): accuracy 0.396 (known 0.520, ...) | ... | 37 gained, ...`.

    `metrics` has GroundingMetrics' keys (the rate of strict whole-format compliance may be
    recorded under its older name `think_rate`); `change` is paired_change's result, if any.
    """
    groups = metrics.get("groups") or {}
    by_group = ", ".join(
        f"{label(name)} {_num(groups[name].get('accuracy'))}" for name in GROUPS if name in groups
    )
    strict = metrics.get("strict_format_rate", metrics.get("think_rate"))
    parts = [
        f"eval {tag} (step {step}, {metrics.get('num_examples', 0)} questions): "
        f"accuracy {_num(metrics.get('accuracy'))}" + (f" ({by_group})" if by_group else ""),
        f"strict format {_num(strict, '.2f')}, answer format {_num(metrics.get('format_rate'), '.2f')}, "
        f"gIoU {_num(metrics.get('giou'))}, reward {_num(metrics.get('mean_reward'))}",
    ]
    if change is not None:
        parts.append(f"{change['gained']} gained, {change['lost']} lost (McNemar p {change['p_value']:.2g})")
    return " | ".join(parts)
