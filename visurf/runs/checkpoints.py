"""A run's checkpoints: written atomically, read safely, and found again on resume.

Checkpoints are written to a temporary file in `checkpoints/` and renamed into place, so a kill
leaves the previous file or the new one, never a truncated one. They are read with
`weights_only=True` (tensors and plain containers only: a crafted file cannot run code). On
resume, a damaged `last.ckpt` is reported with the newest intact checkpoint of the run
(`resume_pick=newest_intact` takes that one).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from visurf.io.atomic import TMP_MARK, atomic_path
from visurf.runs.rundir import RunDir, run_of_checkpoint

log = logging.getLogger(__name__)

RESUME_PICKS = ("last", "newest_intact")


class ResumeError(ValueError):
    """A `resume=` that cannot be followed; the message names the file and what to do."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save, into a temporary file beside the target, then renamed into place."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        # Safe by default whatever the torch version (its default changed to True in 2.6 only).
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents (tensors memory-mapped); ResumeError when it cannot be read."""
    try:
        if os.path.getsize(path) == 0:
            raise ValueError("the file is empty")
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(ckpt, dict) or "global_step" not in ckpt:
            raise ValueError("it is not a Lightning checkpoint (no global_step)")
        return ckpt
    except Exception as err:  # truncated zip, unsafe pickle, wrong content: all mean unusable
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ResumeError(f"{path} cannot be read: {reason}") from None


def checkpoint_step(path: Path) -> int:
    return int(read_checkpoint(path)["global_step"])


def newest_intact(folder: Path, exclude: Path | None = None) -> tuple[Path, int] | None:
    """(path, step) of the readable checkpoint in `folder` with the highest step, if any."""
    found = []
    for path in sorted(folder.glob("*.ckpt")):
        if path.name.startswith(".") or (exclude is not None and path == exclude):
            continue
        try:
            found.append((checkpoint_step(path), path.stat().st_mtime, path))
        except ResumeError:
            continue
    if not found:
        return None
    step, _, path = max(found)
    return path, step


def run_dir_of(resume: str) -> Path:
    """The run directory a `resume=` continues in: the directory itself, or a checkpoint's run.

    A checkpoint must sit in a run's `checkpoints/` folder, beside the run's `config.yaml`:
    anywhere else its "run directory" would be a folder that is not a run.
    """
    path = Path(resume).expanduser()
    if path.is_dir():
        if not RunDir(path).checkpoints.is_dir():
            raise ResumeError(
                f"resume={resume}: {path} is not a run directory (it has no checkpoints/ folder)"
            )
        return path
    if path.is_file():
        run = run_of_checkpoint(path)  # the rule visurf.eval and visurf.export follow too
        if run is None:
            raise ResumeError(
                f"resume={resume}: a checkpoint is resumed in its own run directory, and {path} is not "
                "in a run's checkpoints/ folder (RUN/checkpoints/*.ckpt beside RUN/config.yaml); pass "
                "the run directory, or a checkpoint inside it"
            )
        return run.path
    raise ResumeError(f"resume={resume}: no such run directory or checkpoint file")


def find_checkpoint(resume: str, pick: str = "last") -> tuple[Path, int]:
    """(checkpoint, its step) that `resume=` names: a file, or a run's `checkpoints/last.ckpt`.

    When that file is missing or damaged, `pick="newest_intact"` takes the run's newest readable
    checkpoint instead; otherwise the error names it.
    """
    path = Path(resume).expanduser()
    run_dir = run_dir_of(resume)
    ckpt = path if path.is_file() else RunDir(run_dir).last_checkpoint
    try:
        if not ckpt.is_file():
            raise ResumeError(f"{ckpt} does not exist")
        return ckpt, checkpoint_step(ckpt)
    except ResumeError as err:
        newest = newest_intact(RunDir(run_dir).checkpoints, exclude=ckpt)
        if newest is not None and pick == "newest_intact":
            log.warning("%s; resuming from the newest intact checkpoint %s (step %d)", err, *newest)
            return newest
        if newest is None:
            raise ResumeError(f"resume={resume}: {err}; the run has no intact checkpoint") from None
        raise ResumeError(
            f"resume={resume}: {err}. The newest intact checkpoint is {newest[0]} (step {newest[1]}): "
            f"resume from it with resume={newest[0]}, or add resume_pick=newest_intact"
        ) from None


def remove_temporaries(folder: Path) -> None:
    """Temporary checkpoint files a killed run left behind."""
    for stale in folder.glob(f".*{TMP_MARK}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
