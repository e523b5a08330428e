"""Greedy evaluation of a policy on test examples: the one evaluator of runs, `visurf.eval` and reports
(`completions` is its generation loop, which can also sample)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch

from visurf.data.errors import DataError
from visurf.evaluation.line import eval_line
from visurf.evaluation.metrics import metric_for
from visurf.evaluation.paired import paired_change
from visurf.models.processing import images_of
from visurf.rollout import sample
from visurf.runs.completions import Completion, write_page
from visurf.runs.rundir import RunDir
from visurf.training import tracking
from visurf.training.distributed import generation_context

log = logging.getLogger(__name__)


@torch.no_grad()
def completions(
    model,
    processor,
    reward_fn,
    examples: list,
    *,
    batch_size: int,
    max_new_tokens: int,
    num_samples: int = 1,
    temperature: float | None = None,
    device=None,
    num_batches: int = 0,
) -> Iterator[tuple[list, list[str], list[dict]]]:
    """(batch, texts, rewards) per batch of `examples`: `num_samples` completions of each example,
    grouped by example (k rows per example, in order). `temperature=None` decodes greedily (one
    completion each, whatever `num_samples`), as `evaluate` does.

    `num_batches`: generate at least this many batches, repeating the first one and yielding
    nothing for the repeats; under FSDP every rank must call `generate` equally often (each call
    is collective).
    """
    greedy = temperature is None
    if not greedy and (temperature <= 0 or num_samples < 1):
        raise ValueError(
            f"sampling needs temperature > 0 and num_samples >= 1, got {temperature}, {num_samples}"
        )
    device = device or next(model.parameters()).device
    real = math.ceil(len(examples) / batch_size)
    for index in range(max(real, num_batches)):
        # Decoded as the batch is reached (SplitRows): a row whose image does not decode is left
        # out with data.on_bad_row=skip. A repeat (or a batch left empty) generates a stand-in
        # and yields nothing, so that every rank calls generate equally often (FSDP).
        start = index * batch_size if index < real else 0
        batch = list(examples[start : start + batch_size])
        repeat = index >= real or not batch
        if not batch:
            batch = [next(iter(examples), None)]
            if batch[0] is None:
                raise DataError("no test row has an image that decodes")
        inputs = processor([e.prompt for e in batch], [images_of(e) for e in batch])
        inputs = {k: v.to(device) for k, v in inputs.items()}
        k = 1 if greedy else num_samples
        with generation_context(model) as generate_kwargs:
            seqs = sample(
                model,
                inputs,
                k,
                max_new_tokens=max_new_tokens,
                temperature=1.0 if greedy else temperature,
                top_p=1.0,
                eos_id=processor.eos_token_id,
                pad_id=processor.pad_token_id,
                greedy=greedy,
                suppress_ids=processor.vision_token_ids,
                **generate_kwargs,
            )
        if repeat:
            continue
        texts = [processor.decode(ids[m > 0]) for ids, m in zip(seqs.ids, seqs.mask)]
        rewards = [reward_fn(t, e.solution, e.width, e.height) for t, e in zip(texts, repeat_each(batch, k))]
        yield batch, texts, rewards


def repeat_each(items: list, k: int) -> list:
    """[a, b] -> [a, a, b, b] for k = 2: the examples in the order `sample` returns their rows."""
    return [item for item in items for _ in range(k)]


def original_size(example) -> list:
    """The original pixels answers map back to: [width, height] of a row's image, or one
    [width, height] per image for a row with several."""
    if example.original_sizes:
        return [list(size) for size in example.original_sizes]
    return [example.original_width or example.width, example.original_height or example.height]


@torch.no_grad()
def evaluate(
    model,
    processor,
    reward_fn,
    examples: list,
    *,
    batch_size: int,
    max_new_tokens: int,
    device=None,
    num_samples_logged: int = 0,
    num_batches: int = 0,
    outcomes: list | None = None,
    logged_examples: list | None = None,
) -> tuple[dict, list[dict]]:
    """Metrics of greedy completions (the reward's metric: GroundingMetrics, or AnswerMetrics for
    answer-text labels) and the first completions as records.

    `outcomes`: a list that receives (index, group, correct) for every example evaluated, in
    order (paired.py); index is the example's row in its split (`Example.index`, -1 where it was
    not read from one).
    `logged_examples`: a list that receives the example of each record (its prompt and images).
    `num_batches`: as in `completions` (FSDP).
    """
    device = device or next(model.parameters()).device
    metric = metric_for(reward_fn).to(device)
    samples = []
    for batch, texts, rewards in completions(
        model,
        processor,
        reward_fn,
        examples,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        device=device,
        num_batches=num_batches,
    ):
        metric.update(
            texts,
            rewards,
            [e.objects for e in batch],
            [e.group for e in batch],
            [e.width for e in batch],
            [e.height for e in batch],
        )
        for t, e, r in zip(texts, batch, rewards):
            if outcomes is not None:
                outcomes.append((e.index, e.group, r["correct"]))
            if len(samples) < num_samples_logged:
                original = e.to_original(t)  # the answer in the image's original pixels
                samples.append(
                    {
                        "id": e.id,
                        "group": e.group,
                        "problem": e.problem,
                        "label": e.solution,
                        "completion": t,
                        "reward": r["total"],
                        "correct": r["correct"],
                        "original_size": original_size(e),
                        "boxes": original.boxes,
                        "points": original.points,
                        "rewards": {k: float(v) for k, v in r.items() if k != "correct"},
                    }
                )
                if logged_examples is not None:
                    logged_examples.append(e)
    return metric.compute(), samples


class EvalCallback(L.Callback):
    """Evaluates before training, every N rollout batches, and after training.

    Results go to the logger (`eval/...`), to `samples/eval_step{N}.jsonl` (sample completions;
    `.html`: beside their images, and to the trackers that are on)
    and `samples/outcomes_step{N}.json` ([index, group, correct] of every question) in the run
    directory, and to `eval_before` / `eval_after` for summary.json, with `change`: the questions the run
    turned right or wrong (paired.py). `eval_before` and its per-question outcomes are kept in
    checkpoints so a resumed run still reports both.
    """

    def __init__(self, examples: list, run_dir: str | Path, eval_cfg):
        self.examples = examples
        self.run_dir = Path(run_dir)
        self.cfg = eval_cfg
        self.eval_before: dict | None = None
        self.eval_after: dict | None = None
        self.outcomes_before: list | None = None  # (index, group, correct) of every example
        self.change: dict | None = None  # paired_change(before, after)

    def run(self, trainer, pl_module, tag: str) -> tuple[dict, list]:
        """Metrics, and (index, group, correct) of every example of the split on every rank."""
        shard = self.examples[trainer.global_rank :: trainer.world_size]
        outcomes, logged = [], []
        metrics, samples = evaluate(
            pl_module.policy,
            pl_module.processor,
            pl_module.reward_fn,
            shard,
            batch_size=int(self.cfg.batch_size),
            max_new_tokens=int(self.cfg.max_new_tokens),
            device=pl_module.device,
            num_samples_logged=int(self.cfg.num_samples_logged),
            # the largest shard's batch count, so every rank generates equally often (FSDP)
            num_batches=math.ceil(
                math.ceil(len(self.examples) / trainer.world_size) / int(self.cfg.batch_size)
            ),
            outcomes=outcomes,
            logged_examples=logged,
        )
        # Keyed by the example's row in the test split (a dataset's ids need not be unique), or
        # by its place in the examples given where it has none.
        rank, world = trainer.global_rank, trainer.world_size
        keyed = [
            (index if index >= 0 else rank + i * world, group, correct)
            for i, (index, group, correct) in enumerate(outcomes)
        ]
        gathered = gather_outcomes(keyed, world)  # collective: every rank calls it
        if trainer.is_global_zero:
            run, step = RunDir(self.run_dir), trainer.global_step
            run.samples.mkdir(parents=True, exist_ok=True)
            run.eval_samples(step).write_text("".join(json.dumps(s) + "\n" for s in samples))
            self.log_page(trainer, step, samples, logged)
            # every question's outcome, for comparing runs (visurf.compare)
            run.outcomes(step).write_text(json.dumps(sorted(gathered)))
            if tag != "after":  # the final line also says which questions changed (on_train_end)
                log.info(eval_line(tag, step, metrics))
        scalars = {f"eval/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
        return metrics, gathered

    def log_page(self, trainer, step: int, samples: list[dict], examples: list) -> None:
        """The logged completions beside their images: samples/eval_stepN.html and the trackers."""
        rows = [
            Completion(str(e.id), e.prompt, images_of(e), s["completion"], s["rewards"])
            for s, e in zip(samples, examples)
        ]
        page = RunDir(self.run_dir).eval_page(step)
        write_page(page, f"evaluation at step {step}", rows, records=False)  # .jsonl: written above
        tracking.log_completions(trainer.loggers, "samples/eval", step, rows, page)

    def on_train_start(self, trainer, pl_module):
        if self.eval_before is None:
            self.eval_before, self.outcomes_before = self.run(trainer, pl_module, "before")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        every = int(self.cfg.every_n_batches)
        if every > 0 and (batch[0] + 1) % every == 0 and trainer.global_step < trainer.max_steps:
            self.run(trainer, pl_module, "during")

    def on_train_end(self, trainer, pl_module):
        self.eval_after, outcomes = self.run(trainer, pl_module, "after")
        if self.outcomes_before is not None:  # None: resumed from a checkpoint that lacks them
            try:
                self.change = paired_change(self.outcomes_before, outcomes)
            except ValueError as err:  # e.g. resumed with another eval.num_examples: not comparable
                log.warning("summary.json gets no `change`: %s", err)
        if trainer.is_global_zero:
            log.info(eval_line("after", trainer.global_step, self.eval_after, self.change))

    def state_dict(self) -> dict:
        return {"eval_before": self.eval_before, "outcomes_before": self.outcomes_before}

    def load_state_dict(self, state_dict: dict) -> None:
        self.eval_before = state_dict.get("eval_before")
        self.outcomes_before = state_dict.get("outcomes_before")


def gather_outcomes(outcomes: list, world_size: int) -> list:
    """Every rank's outcomes on every rank (each rank evaluates its own shard)."""
    if world_size == 1:
        return outcomes
    parts: list = [None] * world_size
    torch.distributed.all_gather_object(parts, outcomes)
    return [o for part in parts for o in part]
