"""What a `checkpoint=` argument names: the one resolver of `visurf.eval` and `visurf.export`.

- `base`: no run; the config's own model;
- a run directory (`config.yaml`): its final `model/`, or `checkpoints/last.ckpt` when the run
  did not finish (said in the log);
- a Lightning `.ckpt` file: only inside a run's `checkpoints/` (its run holds the config);
- an HF model directory (full weights or a peft adapter): the run's own `model/`, or a model
  outside any run.

Resuming (`resume=`) reads checkpoints with the same rule for files (`runs.checkpoints`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from visurf.runs.rundir import RunDir, is_model_dir, run_of_checkpoint

log = logging.getLogger(__name__)


class CheckpointNotFound(FileNotFoundError):
    """A `checkpoint=` that names nothing loadable; the message says what was found instead."""


@dataclass(frozen=True)
class Trained:
    run: RunDir | None  # the run the weights come from (None: the base, or a model outside any run)
    weights: Path | None  # an HF model directory or a Lightning .ckpt file (None: the config's model)


def locate(checkpoint: str | Path) -> Trained:
    if str(checkpoint) == "base":
        return Trained(None, None)
    path = Path(checkpoint).expanduser()
    if path.is_file():
        run = run_of_checkpoint(path)
        if run is None:
            raise CheckpointNotFound(
                f"checkpoint={checkpoint}: a checkpoint file is read with its run, and {path} is not in a "
                "run's checkpoints/ folder (RUN/checkpoints/*.ckpt beside RUN/config.yaml)"
            )
        return Trained(run, path)
    if RunDir.is_run(path):
        run = RunDir(path)
        if run.has_model():
            return Trained(run, run.model)
        if run.last_checkpoint.is_file():
            log.warning("%s has no model/ (the run did not finish): using %s", path, run.last_checkpoint)
            return Trained(run, run.last_checkpoint)
        raise CheckpointNotFound(
            f"checkpoint={checkpoint}: the run has neither final weights ({run.model}) nor a checkpoint "
            f"({run.last_checkpoint}): it stopped before its first checkpoint"
        )
    if path.is_dir() and is_model_dir(path):
        parent = path.parent
        own = path.name == RunDir.MODEL and RunDir.is_run(parent)
        return Trained(RunDir(parent) if own else None, path)
    if not path.exists():
        raise CheckpointNotFound(
            f"checkpoint={checkpoint}: {path} does not exist (no such run directory or checkpoint file)"
        )
    raise CheckpointNotFound(
        f"checkpoint={checkpoint}: {path} is neither a run directory (config.yaml), a model directory "
        "(config.json or adapter_config.json) nor a checkpoint file"
    )
