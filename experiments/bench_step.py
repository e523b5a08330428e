"""Time per optimisation step of `visurf` against `rlvr` at G = 8 on the tiny model, in one process.

    python experiments/bench_step.py [--steps 12] [--warmup 3] [--rounds 2] [--model tiny_base]

Both objectives run through the real recipe (Hydra config, Lightning Trainer, generate, loss,
optimiser) with the same seed, batch (8 prompts) and G; they alternate for `--rounds` rounds so
drift in the machine's speed hits both. Prints the median step time of each and their ratio
(DESIGN §6: the label adds one sequence per group to the training pass, nothing to generation).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning as L

from visurf.compose import compose_config
from visurf.train import fit


class StepTimer(L.Callback):
    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self._start)


def time_steps(objective: str, args, out_dir: str) -> list[float]:
    cfg = compose_config(
        [
            f"objective={objective}",
            f"model={args.model}",
            "rollout.num_generations=8",
            f"rollout.max_new_tokens={args.max_new_tokens}",
            "train.batch_size=8",
            f"trainer.max_steps={args.warmup + args.steps}",
            "eval.num_examples=8",
            "seed=0",
            f"train.checkpoint_every={args.warmup + args.steps}",
        ]
    )
    timer = StepTimer()
    fit(cfg, f"{out_dir}/{objective}-{time.time_ns()}", callbacks=[timer])
    return timer.times[args.warmup :]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="tiny_base")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    times = {"rlvr": [], "visurf": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for objective in times:
                times[objective] += time_steps(objective, args, out)
    rlvr, visurf = statistics.median(times["rlvr"]), statistics.median(times["visurf"])
    print(
        f"model={args.model} G=8 prompts=8 max_new_tokens={args.max_new_tokens} steps={len(times['rlvr'])} each"
    )
    print(f"rlvr   median step {rlvr:.3f} s")
    print(f"visurf median step {visurf:.3f} s")
    print(f"visurf / rlvr = {visurf / rlvr:.3f}   (target <= 1.15)")


if __name__ == "__main__":
    main()
