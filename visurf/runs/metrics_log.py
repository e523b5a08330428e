"""metrics.csv across interruptions: every logged row kept, exactly once.

Lightning's CSVLogger writes the current part of a run to `metrics.csv` (flushed every row, so
whatever a checkpoint covers is on disk). When a run is resumed from a checkpoint at step S,
`start_part` moves the rows of every earlier part into `metrics.earlier.csv` (atomically), less
the rows the resumed part will log again; at the end `finish` writes `metrics.csv` as the
earlier rows followed by this part's, and removes `metrics.earlier.csv`. Both steps are safe to
repeat after a kill at any point (a row already merged is an exact copy, and is dropped).

Which rows a resumed part logs again: training rows of steps >= S, and evaluations after S (an
evaluation at S came after that checkpoint was written, except the final one of a run resumed
at its end, which is evaluated again). Lightning logs a step's training row just after the
checkpoint of that step is written; `LastRow` keeps that row in the checkpoint, so a kill in
between loses nothing.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from visurf.io.atomic import atomic_path
from visurf.runs.rundir import RunDir

METRICS = RunDir.METRICS
EARLIER = "metrics.earlier.csv"


class _Writer(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Lightning deletes an existing metrics.csv here; visurf.recipes.train has dealt with it already
        # (a fresh run removes it, a resumed one moves its rows aside first).
        pass

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        # Lightning rewrites the file in place when a new column appears: a kill then would
        # leave it truncated. Same rows, new header, renamed into place.
        rows = read_rows(Path(self.metrics_file_path))
        _write(Path(self.metrics_file_path), rows, fieldnames)


def csv_logger(run_dir: Path) -> CSVLogger:
    """Lightning's CSVLogger on run_dir/metrics.csv, flushed every row, header changes atomic."""
    logger = CSVLogger(save_dir=str(run_dir), name="", version="", flush_logs_every_n_steps=1)
    logger._experiment = _Writer(log_dir=logger.log_dir)
    return logger


def read_rows(path: Path) -> list[dict]:
    """Rows of a metrics file as strings; a last line cut short by a kill is left out."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def _write(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    if fieldnames is None:
        fieldnames = sorted({k for row in rows for k in row})
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = tuple(sorted((k, v) for k, v in row.items() if v not in ("", None)))
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _is_eval(row: dict) -> bool:
    return any(k.startswith("eval/") and v not in ("", None) for k, v in row.items())


def _step(row: dict) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return float("nan")


def logged_again(row: dict, step: int, final_eval_again: bool) -> bool:
    """Whether a part resumed at `step` logs this row again."""
    s = _step(row)
    if _is_eval(row):
        return s > step or (s == step and final_eval_again)
    return s >= step


def start_part(run_dir: Path, step: int, final_eval_again: bool, last_row: dict | None) -> None:
    """Before a resumed part logs anything: all rows so far, less those it logs again, into
    metrics.earlier.csv; the checkpoint's own last training row added if the kill lost it."""
    run_dir = Path(run_dir)
    rows = _unique(read_rows(run_dir / EARLIER) + read_rows(run_dir / METRICS))
    rows = [r for r in rows if not logged_again(r, step, final_eval_again)]
    if last_row and not any(not _is_eval(r) and _step(r) == float(last_row["step"]) for r in rows):
        rows.append({k: _text(v) for k, v in last_row.items()})  # it was the last row logged
    _write(run_dir / EARLIER, rows)
    (run_dir / METRICS).unlink(missing_ok=True)


def start_fresh(run_dir: Path) -> None:
    """A run that is not resumed starts with no metrics (as Lightning's CSVLogger would)."""
    for name in (METRICS, EARLIER):
        (Path(run_dir) / name).unlink(missing_ok=True)


def finish(run_dir: Path) -> None:
    """metrics.csv = the earlier parts' rows + this part's; metrics.earlier.csv removed."""
    run_dir = Path(run_dir)
    earlier = run_dir / EARLIER
    if not earlier.exists():
        return
    rows = _unique(read_rows(earlier) + read_rows(run_dir / METRICS))
    _write(run_dir / METRICS, rows)
    os.unlink(earlier)


def _text(value) -> str:
    # What csv.DictWriter writes for the value Lightning logs (a Python float or int).
    return "" if value is None else str(value)


class LastRow(L.Callback):
    """Keeps the training row of the step just taken in the checkpoint of that step.

    Lightning writes a step's checkpoint (in on_train_batch_end) before it logs the step's
    training row; this callback runs before the checkpoint callbacks, which Lightning orders last.
    """

    def __init__(self):
        self.row: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        connector = trainer._logger_connector
        if not connector.should_update_logs:
            self.row = None
            return
        metrics = connector.metrics["log"]  # what Lightning will log for this batch
        if not metrics:
            self.row = None
            return
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        row.setdefault("epoch", trainer.current_epoch)
        row["step"] = trainer.fit_loop.epoch_loop._batches_that_stepped
        self.row = row

    def state_dict(self) -> dict:
        return {"row": self.row}

    def load_state_dict(self, state_dict: dict) -> None:
        self.row = state_dict.get("row")
