"""A run's summary.json: what ran, on which versions, and its evaluations before and after.

Written last into the run directory (`RunDir.summary`): a run without it did not finish. A run
whose final evaluation did not happen still writes it, listing what is missing under
`incomplete`, and fails with `IncompleteRunError`.
"""

from __future__ import annotations

import platform
from pathlib import Path

from visurf.runs.naming import injection_of, reward_control_of


class IncompleteRunError(RuntimeError):
    """The run finished without all of summary.json (it was written anyway, saying what is missing)."""


def versions() -> dict[str, str]:
    # Read from package metadata: importing peft would pull in bitsandbytes (seconds) for nothing.
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "lightning", "peft"):
        out[name] = version(name)
    return out


def run_summary(
    cfg,
    *,
    steps: int,
    skipped_steps: int,
    wall_time_s: float,
    evaluation,
    resumed_from: Path | None,
    skipped_rows: dict | None = None,
) -> dict:
    """summary.json of a run of `cfg`; `evaluation` holds its evaluations (EvalCallback);
    `skipped_rows`: {"train": n, "test": n}, rows left out as malformed (data.on_bad_row=skip)."""
    summary = {
        "objective": cfg.objective.name,
        "reward_control": reward_control_of(cfg),  # None where no stage injects the label
        "injection": injection_of(cfg),  # likewise
        "seed": int(cfg.seed),
        "steps": steps,
        "skipped_steps": skipped_steps,
        "wall_time_s": round(wall_time_s, 2),
        "versions": versions(),
        "eval_before": evaluation.eval_before,
        "eval_after": evaluation.eval_after,
        "change": evaluation.change,
        "model": str(cfg.model.name),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "skipped_rows": skipped_rows or {"train": 0, "test": 0},
    }
    missing = [key for key in ("eval_before", "eval_after") if summary[key] is None]
    if missing:  # an evaluation that did not run: the summary says so, and the run fails
        summary["incomplete"] = missing
    return summary
