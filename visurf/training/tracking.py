"""Experiment trackers: Weights & Biases and MLflow, through Lightning's own loggers.

`logging.wandb=true`: a W&B run under RUN/wandb/, offline unless `logging.wandb_offline=false`
(`wandb sync RUN/wandb/offline-run-*` uploads it later). `logging.mlflow=true`: an MLflow run in
the tracking store `logging.mlflow_tracking_uri`, by default a SQLite file in the run directory
(RUN/mlflow/mlflow.db, artifacts in RUN/mlflow/artifacts; `mlflow ui --backend-store-uri
sqlite:///RUN/mlflow/mlflow.db` shows it). Both record the resolved config, every metric the run
logs (Lightning passes them on), the completions tables (`log_completions`) and the summary
(`log_summary`). A resumed run continues the same tracker runs: their ids are kept in
RUN/wandb/run_id and RUN/mlflow/run_id; a run that is not resumed starts new ones.
"""

from __future__ import annotations

import logging
import math
import uuid
from functools import partial
from pathlib import Path

from omegaconf import OmegaConf

from visurf.runs.completions import Completion, columns, table_rows, thumbnail

log = logging.getLogger(__name__)


def wandb_logger(cfg, run_dir: Path):
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    run_dir = Path(run_dir)
    return WandbLogger(
        name=run_dir.name,
        save_dir=str(run_dir),
        offline=bool(cfg.logging.get("wandb_offline", True)),
        project=str(cfg.logging.get("wandb_project", "visurf")),
        id=_run_id(run_dir / "wandb" / "run_id", bool(cfg.get("resume")), lambda: uuid.uuid4().hex[:16]),
        resume="allow",
        # W&B's capture of the console would wrap visurf's own output (the run directory keeps
        # it); quiet: no summary table at the end, visurf says where the run is (`close`).
        settings=wandb.Settings(console="off", quiet=True),
    )


def _run_id(path: Path, resumed: bool, new) -> str | None:
    """The tracker run id kept at `path` when a run is resumed, else `new()` (None: the tracker
    makes one), written there for a later resume."""
    if resumed and path.is_file():
        return path.read_text().strip()
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    run_id = new()
    if run_id is not None and rank_zero_only.rank == 0:  # rank 0's tracker is the one that logs
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n")
    return run_id


def mlflow_logger(cfg, run_dir: Path):
    from lightning.pytorch.loggers import MLFlowLogger

    store = Path(run_dir) / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    for name in ("mlflow.store.db.utils", "alembic"):  # a new store's table set-up, line by line
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = cfg.logging.get("mlflow_tracking_uri")
    # The default store is local: its artifacts beside it. Another store keeps its own.
    artifacts = None if uri else (store / "artifacts").resolve().as_uri()
    run_id_file = store / "run_id"
    logger = MLFlowLogger(
        experiment_name=str(cfg.logging.get("mlflow_experiment", "visurf")),
        run_name=Path(run_dir).name,
        tracking_uri=uri or f"sqlite:///{store.resolve() / 'mlflow.db'}",
        artifact_location=artifacts,
        run_id=_run_id(run_id_file, bool(cfg.get("resume")), lambda: None),
    )
    if logger.run_id is not None:  # creates the run (rank 0 only: Lightning's loggers are)
        run_id_file.write_text(logger.run_id + "\n")
    return logger


def tracking_loggers(cfg, run_dir: Path) -> list:
    """The trackers `cfg.logging` turns on (none by default)."""
    loggers = []
    if cfg.logging.get("wandb", False):
        loggers.append(wandb_logger(cfg, run_dir))
    if cfg.logging.get("mlflow", False):
        loggers.append(mlflow_logger(cfg, run_dir))
    return loggers


def _kind(logger) -> str | None:
    name = type(logger).__name__
    return {"WandbLogger": "wandb", "MLFlowLogger": "mlflow"}.get(name)


def log_config(loggers: list, cfg, config_file: Path) -> None:
    """The resolved config into each tracker: W&B's run config, MLflow's params (Lightning cuts
    values at 250 characters) and the whole file as an artifact."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for logger in loggers:
        kind = _kind(logger)
        if kind == "wandb":
            logger.experiment.config.update(resolved, allow_val_change=True)
        elif kind == "mlflow":
            _mlflow_params(logger, resolved)
            logger.experiment.log_artifact(logger.run_id, str(config_file))


def _mlflow_params(logger, resolved: dict) -> None:
    """The config as MLflow params. A resumed run's MLflow run has them already, and MLflow
    refuses a param's value to change (resume with more steps): those go in as tags
    `resumed/<key>` instead (the artifact config.yaml is the latest whole)."""
    from lightning.fabric.utilities.logger import _flatten_dict

    client, run_id = logger.experiment, logger.run_id
    logged = client.get_run(run_id).data.params
    params = {k: str(v)[:250] for k, v in _flatten_dict(resolved).items()}  # Lightning's cut
    logger.log_hyperparams({k: v for k, v in params.items() if k not in logged})
    for key, value in params.items():
        if key in logged and logged[key] != value:
            client.set_tag(run_id, f"resumed/{key}", value)


def log_completions(loggers: list, key: str, step: int, rows: list[Completion], page: Path) -> None:
    """A completions table (key e.g. `samples/train`) into each tracker: a W&B table with its
    images, an MLflow table artifact with its images, and the HTML page beside it. A row's images
    are one picture (side by side when several)."""
    if not rows:
        return
    names = columns(rows)
    for logger in loggers:
        kind = _kind(logger)
        if kind == "wandb":
            import wandb

            data = table_rows(rows, lambda images: wandb.Image(_strip(images)) if images else None)
            logger.experiment.log({key: wandb.Table(columns=names, data=data), "trainer/global_step": step})
        elif kind == "mlflow":
            # MLflow's table takes a column of images only: a text-only row shows a blank one
            # (`num_images` says which rows have none); a table of text-only rows has no images.
            shown = any(r.images for r in rows)
            data = table_rows(rows, partial(_mlflow_image, blank=shown))
            table = {name: [row[i] for row in data] for i, name in enumerate(names)}
            table["num_images"] = [len(r.images) for r in rows]
            if not shown:
                table.pop("images")
            client, run_id = logger.experiment, logger.run_id
            client.log_table(run_id, data=table, artifact_file=f"{key}_step{step:05d}.json")
            client.log_artifact(run_id, str(page), artifact_path=key.rpartition("/")[0] or None)


def _mlflow_image(images: list, blank: bool):
    """A row's picture for MLflow's table; a text-only row's a blank one (`blank`) or none."""
    if images:
        return _strip(images)
    from PIL import Image

    return Image.new("RGB", (16, 16), "white") if blank else None


def _strip(images: list):
    """A row's images as one picture: W&B shows one image a cell (side by side when several)."""
    if len(images) == 1:
        return thumbnail(images[0])
    from PIL import Image

    parts = [thumbnail(im) for im in images]
    strip = Image.new("RGB", (sum(p.width for p in parts), max(p.height for p in parts)), "white")
    x = 0
    for part in parts:
        strip.paste(part, (x, 0))
        x += part.width
    return strip


def flat_numbers(tree: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested dict, keyed by their path (`eval_after/accuracy`)."""
    out: dict[str, float] = {}
    for key, value in (tree or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_numbers(value, path + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[path] = float(value)
    return out


def log_summary(loggers: list, summary: dict, summary_file: Path | None = None) -> None:
    """The run's summary into each tracker: its numbers as W&B's run summary and MLflow metrics
    (`summary/...`), and summary.json as a W&B run file and an MLflow artifact."""
    numbers = flat_numbers(summary)
    for logger in loggers:
        kind = _kind(logger)
        if kind == "wandb":
            logger.experiment.summary.update({f"summary/{k}": v for k, v in numbers.items()})
            if summary_file is not None:  # the whole of it among the run's files
                logger.experiment.save(
                    str(summary_file), base_path=str(Path(summary_file).parent), policy="now"
                )
        elif kind == "mlflow":
            logger.log_metrics({f"summary/{k}": v for k, v in numbers.items()}, step=int(summary["steps"]))
            if summary_file is not None:
                logger.experiment.log_artifact(logger.run_id, str(summary_file))


def close(loggers: list) -> None:
    """Ends the W&B run (its files complete on disk; MLflow's run Lightning has ended) and says
    where each tracker's run is."""
    for logger in loggers:
        kind = _kind(logger)
        if kind == "wandb" and logger._experiment is not None:
            run = logger.experiment
            where, offline = run.settings.sync_dir, logger._offline  # Lightning sets WANDB_MODE=dryrun
            run.finish()
            upload = f" (offline: `wandb sync {where}` uploads it)" if offline else ""
            log.info("W&B run %s: %s%s", run.id, where, upload)
        elif kind == "mlflow":
            log.info("MLflow run %s in %s", logger.run_id, logger._tracking_uri)
