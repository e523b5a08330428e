"""Every `logging.samples_every` rollout batches, the batch's completions as a table.

A stage's experience may carry `samples` (visurf/objectives/experience.py): one record per row
of its batch. The module keeps the last batch's (`PostTrainModule.last_samples`); this callback
turns them into `Completion`s with their prompts and images and writes them to
RUN/samples/train_stepNNNNN.html (+ .jsonl) and to the trackers that are on.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from visurf.models.processing import images_of
from visurf.runs.completions import Completion, write_page
from visurf.runs.rundir import RunDir
from visurf.training import tracking


def completions_of(examples: list, samples: list[dict]) -> list[Completion]:
    """The records a stage gives (`example`: the index of the row's prompt in `examples`) as rows."""
    rows = []
    for record in samples:
        example = examples[record["example"]]
        rows.append(
            Completion(
                id=str(example.id),
                prompt=example.prompt,
                images=images_of(example),
                completion=record["completion"],
                rewards=dict(record.get("rewards") or {}),
                advantage=record.get("advantage"),
                is_label=bool(record.get("is_label", False)),
            )
        )
    return rows


class CompletionsLog(L.Callback):
    def __init__(self, run_dir: str | Path, every: int):
        self.run = RunDir(run_dir)
        self.every = int(every)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        samples, pl_module.last_samples = pl_module.last_samples, None
        batch_number, examples = batch[0], batch[1]  # (number, examples, ...): visurf.data.batches
        if self.every <= 0 or (batch_number + 1) % self.every or not samples:
            return
        if not trainer.is_global_zero:  # rank 0's prompts stand for the batch
            return
        step = trainer.global_step
        rows = completions_of(examples, samples)
        page = self.run.train_samples(step)
        write_page(page, f"training step {step}", rows)
        tracking.log_completions(trainer.loggers, "samples/train", step, rows, page)
