"""A run's summary.json: what ran, on which versions and machine, and its evaluations before and after.

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


def machine() -> dict:
    """The processor and thread count a run computed with: on CPU the same recipe and seed give a
    different model on another processor model or thread count (floating-point sums differ)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:  # Linux names the model here; platform.processor() often says only "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "threads": torch.get_num_threads(), "gpu": gpu}


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
        "machine": machine(),
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
