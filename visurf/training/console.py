"""What a run prints: a start block, each line once, one line per evaluation, no library chatter.

`quiet_libraries()` is called by the entry point (`python -m visurf.run`) once Hydra has set up
logging: Lightning's own console handler goes (its records reach Hydra's handlers, console and
the run's log file, once), and the tips and warnings known to be harmless here are dropped where
they are raised. `run_header(cfg, run_dir)` is the start block.
"""

from __future__ import annotations

import logging
import warnings

from visurf.runs.naming import DEFAULT_INJECTION, injection_of, reward_control_of

# Warnings that say nothing about a visurf run (message regex, matched from the start).
HARMLESS_WARNINGS = (
    # the run directory holds config.yaml (and Hydra's .hydra/) before the CSV logger starts
    r"Experiment logs directory .* exists and is not empty",
    # torch moved its pytree API; Lightning still calls the old one
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # visurf steps the optimiser itself; a checkpoint holds the state after the step, as intended
    r"Using ModelCheckpoint with manual optimization",
    # rollout batches are prompts built in the main process; workers would only copy them
    r".*does not have many workers",
    # transformers renamed the attribute; nothing visurf calls
    r"`is_gradient_checkpointing` is deprecated",
    # the module's transfer_batch_to_device (batches of examples are not moved) is the one meant
    r"You have overridden `transfer_batch_to_device` in `LightningModule`",
)
# Lightning info lines that are tips or repeat the start block (message prefixes).
DROPPED_INFO = (
    "💡 Tip",
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "`weights_only` was not set",  # Lightning reading back visurf's own checkpoint
    "`Trainer.fit` stopped: `max_steps=",  # the run ends where it was told to; eval after follows
)
LIGHTNING_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning_fabric",
    "pytorch_lightning",
)
INFO_SOURCES = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
)


class DropInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(DROPPED_INFO)


def quiet_libraries() -> None:
    """Each line once, no tips, no known-harmless warnings, no download-style progress bars."""
    import datasets
    import lightning  # noqa: F401  (its import adds the console handler removed below)
    import transformers

    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    for name in INFO_SOURCES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropInfo) for f in logger.filters):
            logger.addFilter(DropInfo())
    # Building the synthetic parquet files and loading/saving weights are instants on this scale.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def _stages(cfg) -> str:
    from visurf.objectives import STAGES

    parts = []
    for spec in cfg.objective.stages:
        share = spec.get("fraction")
        parts.append(
            STAGES.get(spec.kind).title(spec) + (f" ({share:.0%} of the steps)" if share is not None else "")
        )
    return " -> ".join(parts)


def _data(cfg) -> str:
    d, evaluated = cfg.data, int(cfg.eval.num_examples) or "all"
    if d.source == "synth":
        s = d.synth
        what = f"synthetic world ({s.num_train} train, {s.num_test} test rows, novel fraction {s.novel_fraction})"
    else:
        what = f"{d.path}"
    every = int(cfg.eval.get("every_n_batches", 0) or 0)
    when = "before and after" + (f" training, and every {every} batches" if every else "")
    return f"{what}; evaluated on {evaluated} {d.test_split} rows {when}"


def _count(n, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def run_header(cfg, run_dir) -> str:
    """The start block: objective, reward control (only where one applies), model, data, steps, run dir."""
    policy = any(stage.kind == "policy" for stage in cfg.objective.stages)
    batch = f"{cfg.train.batch_size} prompts" + (
        f" x {cfg.rollout.num_generations} completions" if policy else ""
    )
    rows = [("objective", f"{cfg.objective.name}: {_stages(cfg)}")]
    control = reward_control_of(cfg)
    if control is not None:
        from visurf.reward_control import RewardControl

        names = RewardControl.from_config(cfg.reward_control).names
        rows.append(("reward control", f"{control} ({', '.join(names) or 'no strategy'})"))
        if (injection := injection_of(cfg)) != DEFAULT_INJECTION:
            rows.append(("injection", str(injection)))
    m, t = cfg.model, cfg.trainer
    frozen = ", vision tower frozen" if m.get("freeze_vision_tower") else ""
    nodes = f" on {_count(t.num_nodes, 'node')}" if int(t.num_nodes) > 1 else ""
    rows += [
        ("model", f"{m.name} ({m.frame}-px frame, {m.dtype}{frozen}, peft {cfg.peft.name})"),
        ("data", _data(cfg)),
        (
            "steps",
            f"{t.max_steps} optimisation steps ({batch} per step, lr {cfg.optim.lr:g}, {cfg.optim.schedule})",
        ),
        ("trainer", f"{t.accelerator}, {_count(t.devices, 'device')}{nodes}, precision {t.precision}"),
        ("run dir", str(run_dir)),
    ]
    return "\n".join(["visurf run", *(f"  {name:<15} {value}" for name, value in rows)])


def image_tokens_line(budget: dict) -> str:
    """The start block's image line (printed once the processor is loaded): the tokens one image
    adds at the frame, the pixel bounds that give them, the model's context."""
    frame = budget["frame"]
    bounds = ""
    if budget.get("max_pixels"):
        bounds = f", pixels bounded to [{budget['min_pixels']}, {budget['max_pixels']}]"
    context = f"; context {budget['context']} tokens" if budget.get("context") else ""
    text = f"{budget['tokens_per_image']} per {frame}x{frame} image{bounds}{context}"
    return f"  {'image tokens':<15} {text}"


def progress_bar():
    """Lightning's rich progress bar, counting steps ("Epoch 0/-2" means nothing with max_epochs=-1)."""
    from lightning.pytorch.callbacks import RichProgressBar

    class StepProgressBar(RichProgressBar):
        def _get_train_description(self, current_epoch: int) -> str:
            return "steps"

    return StepProgressBar()
