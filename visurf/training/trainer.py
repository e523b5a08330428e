"""Lightning's Trainer for a run: loggers, checkpointing, strategy and precision from the config."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from visurf.runs import metrics_log
from visurf.runs.checkpoints import AtomicCheckpointIO
from visurf.runs.rundir import RunDir
from visurf.training.distributed import build_strategy
from visurf.training.tracking import tracking_loggers


def build_trainer(cfg, run_dir: Path, callbacks: list) -> L.Trainer:
    t = cfg.trainer
    loggers = [metrics_log.csv_logger(run_dir)]
    if cfg.logging.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    loggers += tracking_loggers(cfg, run_dir)  # W&B, MLflow: as logging.wandb / logging.mlflow say
    checkpoints = ModelCheckpoint(
        dirpath=RunDir(run_dir).checkpoints,
        filename="step{step:05d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=1,
        enable_version_counter=False,  # a step done again (after a resume) replaces its checkpoint
        every_n_train_steps=int(cfg.train.checkpoint_every),
    )
    strategy = build_strategy(t)
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=t.precision,
        max_steps=int(t.max_steps),
        max_epochs=-1,
        logger=loggers,
        callbacks=[metrics_log.LastRow(), checkpoints, *callbacks],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=int(cfg.logging.log_every_n_steps),
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        enable_progress_bar=True,
        enable_model_summary=False,
    )
