"""The recipe of a run: build everything from a composed config, fit, write the run directory.

What the run directory holds is `visurf.runs.rundir`'s to say. Checkpoints, `model/` and
`summary.json` are written atomically (visurf.io.atomic); a resumed run keeps every metrics row
of its earlier parts once (visurf.runs.metrics_log).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import OmegaConf

from visurf.config.validate import validate
from visurf.data.datamodule import RolloutData
from visurf.data.lengths import drop_overlong, model_context
from visurf.data.sources import open_rows
from visurf.evaluation.runner import EvalCallback
from visurf.io import atomic
from visurf.models.families import family_of
from visurf.models.loading import freeze_vision_tower, load_policy
from visurf.models.processing import image_budget
from visurf.objectives import build_schedule
from visurf.rewards import build_reward, format_completion, label_answer
from visurf.runs import metrics_log
from visurf.runs.checkpoints import (
    find_checkpoint,
    read_checkpoint,
    remove_temporaries,
    run_dir_of,
)
from visurf.runs.rundir import RunDir
from visurf.runs.summary import IncompleteRunError, run_summary
from visurf.training import tracking
from visurf.training.completions_log import CompletionsLog
from visurf.training.console import image_tokens_line
from visurf.training.distributed import full_state_dict
from visurf.training.module import PostTrainModule
from visurf.training.trainer import build_trainer

log = logging.getLogger(__name__)


def longest_label(example) -> str:
    """The longest form a stage gives the label: with its think text, or the dataset's own string."""
    return max(
        format_completion(example.think or None, example.solution),
        f"<answer>{example.raw_solution}</answer>",
        key=len,
    )


def budget_of(policy, processor, frame: int) -> dict:
    """One image's tokens at the frame, the pixel bounds in force and the context (image_budget)."""
    return image_budget(processor, frame, model_context(policy), family_of(policy).pixel_bounds)


def run_dir_for(cfg, hydra_dir: str | Path) -> Path:
    """Where a run writes: Hydra's output dir, or the original run's dir when resuming one."""
    return run_dir_of(cfg.resume) if cfg.resume else Path(hydra_dir)


def start_resumed_part(cfg, run_dir: Path, ckpt: Path, step: int) -> None:
    """Before anything overwrites the checkpoint: the metrics so far, less what the resumed part
    logs again, set aside (visurf.runs.metrics_log); a killed run's temporary files removed."""
    remove_temporaries(RunDir(run_dir).checkpoints)
    if ckpt.parent.parent.resolve() != run_dir.resolve():  # resumed into another directory
        metrics_log.start_fresh(run_dir)
        return
    callbacks = read_checkpoint(ckpt).get("callbacks", {})
    last_row = next((v.get("row") for k, v in callbacks.items() if k.startswith("LastRow")), None)
    final_eval_again = step >= int(cfg.trainer.max_steps)  # nothing left to train: evaluated again
    metrics_log.start_part(run_dir, step, final_eval_again, last_row)


def set_steps_for_epochs(cfg, num_rows: int) -> None:
    """With `train.epochs`, trainer.max_steps becomes the optimisation steps of that many passes
    over the training rows: ceil(epochs x rows / prompts per global batch) rollout batches,
    `objective.mu` steps each."""
    epochs = cfg.train.get("epochs")
    if not epochs:
        return
    world = int(cfg.trainer.devices) * int(cfg.trainer.num_nodes) if cfg.trainer.accelerator != "cpu" else 1
    batches = math.ceil(float(epochs) * num_rows / (int(cfg.train.batch_size) * world))
    steps = batches * int(cfg.objective.get("mu", 1) or 1)
    log.info(
        "train.epochs=%g over %d rows: %d rollout batches, trainer.max_steps=%d",
        epochs,
        num_rows,
        batches,
        steps,
    )
    cfg.trainer.max_steps = steps


def build_run(cfg) -> tuple[PostTrainModule, list, list]:
    """The module (policy, processor, reward, stage schedule) and the train and test rows of a
    run (SplitRows: checked now, decoded per batch), as `fit` trains them; also what a probe of
    one run's steps starts from."""
    frame = int(cfg.model.frame)
    answer = label_answer(cfg.reward.name)  # how the reward reads a row's label (None: boxes)
    train_examples = open_rows(cfg.data, frame, cfg.data.train_split, log=log, answer=answer)
    test_examples = open_rows(
        cfg.data,
        frame,
        cfg.data.test_split,
        limit=int(cfg.eval.num_examples) or None,
        log=log,
        answer=answer,
    )
    quant = None
    if cfg.peft.name == "qlora":  # imported lazily: peft/bitsandbytes cost seconds to import
        from visurf.models.adapters import quantization_config

        quant = quantization_config(cfg.peft)
    policy, processor = load_policy(cfg.model, quantization_config=quant)
    context, on_bad_row = model_context(policy), cfg.data.on_bad_row
    if rank_zero_only.rank == 0:  # the start block's last line: what one image costs at the frame
        log.info(image_tokens_line(budget_of(policy, processor, frame)))
    generates = any(stage.kind == "policy" for stage in cfg.objective.stages)
    rollout = int(cfg.rollout.max_new_tokens) if generates else 0
    train_examples = drop_overlong(
        train_examples, processor, context, longest_label, on_bad_row, log, new_tokens=rollout
    )
    test_examples = drop_overlong(
        test_examples,
        processor,
        context,
        longest_label,
        on_bad_row,
        log,
        new_tokens=int(cfg.eval.max_new_tokens),
    )
    set_steps_for_epochs(cfg, len(train_examples))
    if cfg.model.get("freeze_vision_tower"):
        freeze_vision_tower(policy)
    if cfg.peft.name != "none":
        from visurf.models.adapters import apply_adapters

        policy = apply_adapters(policy, cfg.peft)
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)  # building a base model re-seeds
    module = PostTrainModule(cfg, policy, processor, reward_fn, build_schedule(cfg))
    return module, train_examples, test_examples


def train(cfg, run_dir: str | Path, callbacks: list | None = None, *, checked: bool = False) -> dict:
    """Train per `cfg`, write the outputs into `run_dir`, return the summary.

    `checked`: the caller has validated `cfg` already (`post_train` does, before it builds a base)."""
    if not checked:
        validate(cfg)
    run_dir = Path(run_dir)
    # The checkpoint and its step are read before anything is written (the run overwrites last.ckpt).
    ckpt, resumed_at = (
        find_checkpoint(cfg.resume, cfg.get("resume_pick", "last")) if cfg.resume else (None, 0)
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunDir(run_dir)
    atomic.write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    start = time.time()

    module, train_examples, test_examples = build_run(cfg)
    if cfg.train.get("epochs"):  # build_run set trainer.max_steps from the rows
        atomic.write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    policy, processor = module.policy, module.processor
    data = RolloutData(
        train_examples, int(cfg.train.batch_size), int(cfg.seed), int(cfg.data.get("num_workers", 0) or 0)
    )
    evaluation = EvalCallback(test_examples, run_dir, cfg.eval)
    if rank_zero_only.rank == 0:  # before the logger exists
        if ckpt is not None:
            start_resumed_part(cfg, run_dir, ckpt, resumed_at)
        else:
            metrics_log.start_fresh(run_dir)
    samples_every = int(cfg.logging.get("samples_every", 0) or 0)
    extra = [CompletionsLog(run_dir, samples_every), *(callbacks or [])]
    trainer = build_trainer(cfg, run_dir, [evaluation, *extra])
    if trainer.is_global_zero:
        tracking.log_config(trainer.loggers, cfg, run.config)
    safe = {"weights_only": True} if "weights_only" in inspect.signature(trainer.fit).parameters else {}
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt) if ckpt else None, **safe)
    if evaluation.eval_after is None:  # resumed at its last step: fit had nothing left to run
        evaluation.on_train_end(trainer, module)

    # The final state is always resumable (e.g. to train a finished run for longer).
    trainer.save_checkpoint(run.last_checkpoint)
    summary = run_summary(
        cfg,
        steps=int(trainer.global_step),
        skipped_steps=int(module.skipped_steps),
        wall_time_s=time.time() - start,
        evaluation=evaluation,
        resumed_from=ckpt,
        skipped_rows={
            # rows skipped by the split's checks (SplitRows; a list of Examples has none)
            "train": getattr(train_examples, "skipped_checks", 0) + len(module.bad_rows),
            "test": getattr(test_examples, "skipped", 0),
        },
    )
    summary["image_tokens"] = budget_of(policy, processor, int(cfg.model.frame))
    full = full_state_dict(module.policy)  # on every rank: a collective under FSDP, else None
    if trainer.is_global_zero:
        with atomic.atomic_path(run.model) as tmp:
            policy.save_pretrained(tmp, state_dict=full)
            processor.save_pretrained(tmp)
        metrics_log.finish(run_dir)  # after the last row is logged
        atomic.write_text(run.summary, json.dumps(summary, indent=2))  # last: the run is done
        tracking.log_summary(trainer.loggers, summary, run.summary)
        tracking.close(trainer.loggers)
        log.info("run directory: %s", run_dir)
    if summary.get("incomplete"):
        raise IncompleteRunError(
            f"{run.summary} is incomplete: {' and '.join(summary['incomplete'])} missing; "
            "the weights and metrics are written"
        )
    return summary
