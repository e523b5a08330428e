"""Time per optimisation step of `visurf` against `rlvr` at G = 8 on the tiny model, in one process.

    python experiments/bench/bench_step.py [--steps 12] [--warmup 3] [--rounds 2] [--model tiny_base] [--lr 1e-12]

Both objectives run through the real recipe (Hydra config, Lightning Trainer, generate, loss,
optimiser) with the same seed, batch (8 prompts) and G; they alternate for `--rounds` rounds so
drift in the machine's speed hits both. Prints the median step time of each (wall, and the
process's CPU time, which other work on a shared machine moves much less), their mean
completion length and the ratios (docs/method.md: the label adds one sequence per group to the
training pass, nothing to generation).

By default the learning rate is 1e-12, so the policy stays where it starts and both objectives
sample the same rollouts every step: the ratio is then the cost of the label alone. With a real
learning rate (`--lr 1e-4`) the two policies drift apart and the ratio also includes how long
each one's completions have become.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L

from visurf.config.compose import compose_config
from visurf.recipes.train import train


class StepTimer(L.Callback):
    """Each step's wall time and the process's CPU time over it (one thread: the wall time the
    step would take on an idle core, whatever else shares the machine)."""

    def __init__(self):
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.lengths: list[float] = []
        self._start = self._start_cpu = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start, self._start_cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self._start)
        self.cpu.append(time.process_time() - self._start_cpu)
        self.lengths.append(float(trainer.callback_metrics.get("train/completion_length", float("nan"))))


def time_steps(objective: str, args, out_dir: str) -> tuple[list[float], list[float], list[float]]:
    """Wall and CPU seconds of the measured steps, and their mean completion lengths."""
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
            f"optim.lr={args.lr}",
        ]
    )
    timer = StepTimer()
    train(cfg, f"{out_dir}/{objective}-{time.time_ns()}", callbacks=[timer])
    w = args.warmup
    return timer.times[w:], timer.cpu[w:], timer.lengths[w:]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="tiny_base")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-12, help="learning rate (default: policy stays put)")
    args = parser.parse_args(argv)
    times = {"rlvr": [], "visurf": []}
    cpu = {"rlvr": [], "visurf": []}
    lengths = {"rlvr": [], "visurf": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for objective in times:
                step_times, step_cpu, step_lengths = time_steps(objective, args, out)
                times[objective] += step_times
                cpu[objective] += step_cpu
                lengths[objective] += step_lengths
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(
        f"model={args.model} G=8 prompts=8 max_new_tokens={args.max_new_tokens} lr={args.lr:g} "
        f"steps={len(times['rlvr'])} each, load average {' '.join(load)}"
    )
    med = {k: (statistics.median(times[k]), statistics.median(cpu[k])) for k in times}
    for name, (wall, cpu_time) in med.items():
        length = statistics.fmean(lengths[name])
        print(
            f"{name:<6} median step {wall:.3f} s wall, {cpu_time:.3f} s CPU, mean rollout length {length:.1f} tokens"
        )
    print(
        f"visurf / rlvr = {med['visurf'][0] / med['rlvr'][0]:.3f} wall, "
        f"{med['visurf'][1] / med['rlvr'][1]:.3f} CPU   (target <= 1.10)"
    )


if __name__ == "__main__":
    main()
