"""The recipe of a run: build everything from a composed config, fit, write the outputs.

Outputs in the run directory: `config.yaml` (resolved), `metrics.csv` (Lightning's CSVLogger;
TensorBoard too with logging.tensorboard=true), `samples/eval_step*.jsonl`, `checkpoints/`,
`model/` (the final weights as an HF directory) and `summary.json`.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import OmegaConf

from visurf.config import validate
from visurf.data.datamodule import RolloutData
from visurf.data.sources import load_examples
from visurf.evaluation.runner import EvalCallback
from visurf.models.loading import freeze_vision_tower, load_policy
from visurf.module import PostTrainModule
from visurf.naming import reward_control_of
from visurf.objectives import build_schedule
from visurf.rewards import build_reward
from visurf.strategies import build_strategy, full_state_dict

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    # Read from package metadata: importing peft would pull in bitsandbytes (seconds) for nothing.
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "lightning", "peft"):
        out[name] = version(name)
    return out


def resolve_checkpoint(resume: str) -> Path:
    """A checkpoint file, or a run directory's checkpoints/last.ckpt."""
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"resume={resume}: no checkpoint at {path}")
    return path


def run_dir_for(cfg, hydra_dir: str | Path) -> Path:
    """Where a run writes: Hydra's output dir, or the original run's dir when resuming one."""
    if cfg.resume:
        path = Path(cfg.resume).expanduser()
        return path if path.is_dir() else path.parent.parent
    return Path(hydra_dir)


def resumed_step(ckpt: Path) -> int:
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])


def keep_previous_metrics(run_dir: Path) -> Path | None:
    """Lightning's CSVLogger starts metrics.csv afresh; keep the earlier part of a resumed run."""
    path = run_dir / "metrics.csv"
    if not path.exists():
        return None
    kept = run_dir / "metrics.before_resume.csv"
    path.replace(kept)
    return kept


def merge_metrics(path: Path, previous: Path, resumed_at: int) -> None:
    """metrics.csv = the earlier rows up to the resumed step + the rows logged since."""
    import pandas as pd

    old = pd.read_csv(previous)
    new = pd.read_csv(path) if path.exists() else old.iloc[:0]
    old = old[old["step"] < resumed_at]
    pd.concat([old, new], ignore_index=True).to_csv(path, index=False)
    previous.unlink()


def build_trainer(cfg, run_dir: Path, callbacks: list) -> L.Trainer:
    t = cfg.trainer
    loggers = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if cfg.logging.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="step{step:05d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=1,
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
        callbacks=[checkpoints, *callbacks],
        log_every_n_steps=int(cfg.logging.log_every_n_steps),
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        enable_progress_bar=True,
        enable_model_summary=False,
    )


def fit(cfg, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Train per `cfg`, write the outputs into `run_dir`, return the summary."""
    validate(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = resolve_checkpoint(cfg.resume) if cfg.resume else None
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    start = time.time()

    frame = int(cfg.model.frame)
    train_examples = load_examples(cfg.data, frame, cfg.data.train_split)
    test_examples = load_examples(
        cfg.data, frame, cfg.data.test_split, limit=int(cfg.eval.num_examples) or None
    )
    quant = None
    if cfg.peft.name == "qlora":  # imported lazily: peft/bitsandbytes cost seconds to import
        from visurf.models.adapters import quantization_config

        quant = quantization_config(cfg.peft)
    policy, processor = load_policy(cfg.model, quantization_config=quant)
    if cfg.model.get("freeze_vision_tower"):
        freeze_vision_tower(policy)
    if cfg.peft.name != "none":
        from visurf.models.adapters import apply_adapters

        policy = apply_adapters(policy, cfg.peft)
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)  # building a base model re-seeds
    module = PostTrainModule(cfg, policy, processor, reward_fn, build_schedule(cfg))
    data = RolloutData(train_examples, int(cfg.train.batch_size), int(cfg.seed))
    evaluation = EvalCallback(test_examples, run_dir, cfg.eval)
    trainer = build_trainer(cfg, run_dir, [evaluation, *(callbacks or [])])
    previous_metrics = keep_previous_metrics(run_dir) if ckpt else None
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt) if ckpt else None)

    # The final state is always resumable (e.g. to train a finished run for longer).
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if previous_metrics is not None and trainer.is_global_zero:
        merge_metrics(run_dir / "metrics.csv", previous_metrics, resumed_at=resumed_step(ckpt))
    summary = {
        "objective": cfg.objective.name,
        "reward_control": reward_control_of(cfg),  # None where no stage injects the label
        "seed": int(cfg.seed),
        "steps": int(trainer.global_step),
        "skipped_steps": int(module.skipped_steps),
        "wall_time_s": round(time.time() - start, 2),
        "versions": versions(),
        "eval_before": evaluation.eval_before,
        "eval_after": evaluation.eval_after,
        "change": evaluation.change,
        "model": str(cfg.model.name),
        "resumed_from": str(ckpt) if ckpt else None,
    }
    full = full_state_dict(module.policy)  # on every rank: a collective under FSDP, else None
    if trainer.is_global_zero:
        policy.save_pretrained(run_dir / "model", state_dict=full)
        processor.save_pretrained(run_dir / "model")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("run directory: %s", run_dir)
    return summary
