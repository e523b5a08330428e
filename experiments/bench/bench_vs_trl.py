"""Time per step of visurf's RLVR against TRL's GRPOTrainer on the same model, prompts, G and lengths.

    pip install -e '.[bench]'   # TRL, an optional extra
    python experiments/bench/bench_vs_trl.py [--steps 6] [--warmup 2] [--rounds 2] [--model tiny_base]

Both trainers start from the same model directory (the tiny Qwen2.5-VL base by default, its
vision tower frozen in both) and train on the synthetic world's training prompts with the same
reward (visurf's grounding reward), G = 8 completions of 8 prompts a step, up to 128 new tokens
at temperature 1, no KL term, one optimisation pass per batch, AdamW. They alternate for
`--rounds` rounds in one process, so drift in the machine's speed hits both. Prints the median
step time of each (wall, and the process's CPU time, which other work on a shared machine
moves much less), the ratios, and each side's mean completion length (equal work shows as
equal lengths).

By default the learning rate is 1e-12, so both policies stay where they start and sample
completions of the same length distribution every step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.models.loading import freeze_vision_tower, load_policy
from visurf.recipes.base_model import ensure_model
from visurf.recipes.train import train
from visurf.rewards import build_reward

G, PROMPTS = 8, 8
STEP_TIMER = None  # bench_step.StepTimer, imported in main (the script runs from any directory)


def visurf_config(args, steps: int):
    return compose_config(
        [
            "objective=rlvr",
            f"model={args.model}",
            f"rollout.num_generations={G}",
            f"rollout.max_new_tokens={args.max_new_tokens}",
            f"train.batch_size={PROMPTS}",
            f"trainer.max_steps={steps}",
            "eval.num_examples=8",
            "seed=0",
            f"train.checkpoint_every={steps}",
            f"optim.lr={args.lr}",
            "optim.warmup_steps=0",
        ]
    )


def time_visurf(args, out_dir: str) -> tuple[list[float], list[float], list[float]]:
    """visurf's RLVR through its own recipe: per-step wall and CPU seconds, mean completion lengths."""
    timer = STEP_TIMER()
    train(
        visurf_config(args, args.warmup + args.steps), f"{out_dir}/visurf-{time.time_ns()}", callbacks=[timer]
    )
    w = args.warmup
    return timer.times[w:], timer.cpu[w:], timer.lengths[w:]


def trl_dataset(examples: list):
    """The prompts as TRL takes them: a user turn (TRL puts the image before its text, as visurf
    does) and the image; `row` finds the example's solution for the reward."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": e.prompt}], "image": e.image, "row": i}
            for i, e in enumerate(examples)
        ]
    )


def trl_reward(cfg, examples: list):
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))

    def grounding(completions, row, **_) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        picked = [examples[i] for i in row]
        return [reward_fn(t, e.solution, e.width, e.height)["total"] for t, e in zip(texts, picked)]

    return grounding


def time_trl(args, out_dir: str) -> tuple[list[float], list[float], list[float]]:
    """TRL's GRPOTrainer on the same model directory, prompts, G and lengths."""
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.cpu, self.lengths = [], [], []
            self._start = self._start_cpu = 0.0

        def on_step_begin(self, *_, **__):
            self._start, self._start_cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self._start)
            self.cpu.append(time.process_time() - self._start_cpu)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "completions/mean_length" in logs:
                self.lengths.append(float(logs["completions/mean_length"]))

    steps = args.warmup + args.steps
    cfg = visurf_config(args, steps)
    examples = load_examples(cfg.data, int(cfg.model.frame), cfg.data.train_split)[: steps * PROMPTS]
    policy, processor = load_policy(cfg.model)
    if cfg.model.get("freeze_vision_tower"):
        freeze_vision_tower(policy)
    config = GRPOConfig(
        output_dir=f"{out_dir}/trl-{time.time_ns()}",
        per_device_train_batch_size=PROMPTS * G,
        num_generations=G,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        adam_beta2=0.99,
        weight_decay=0.0,
        max_grad_norm=1.0,
        beta=0.0,
        loss_type="grpo",
        scale_rewards="group",
        mask_truncated_completions=True,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        shuffle_dataset=False,
        disable_tqdm=True,
    )
    timer = Timer()
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=trl_reward(cfg, examples),
        args=config,
        train_dataset=trl_dataset(examples),
        # visurf's own processor object (the stock one needs torchvision for Qwen's videos)
        processing_class=processor.processor,
        callbacks=[timer],
    )
    trainer.train()
    w = args.warmup
    return timer.times[w:], timer.cpu[w:], timer.lengths[w:]


def main(argv=None) -> None:
    global STEP_TIMER
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_step import StepTimer

    STEP_TIMER = StepTimer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="tiny_base")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-12, help="learning rate (default: policies stay put)")
    args = parser.parse_args(argv)
    ensure_model(visurf_config(args, 1).model)  # the base is built (once) before any timing
    times = {"trl": [], "visurf": []}
    cpu = {"trl": [], "visurf": []}
    lengths = {"trl": [], "visurf": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            for name, run in (("trl", time_trl), ("visurf", time_visurf)):
                step_times, step_cpu, step_lengths = run(args, out)
                times[name] += step_times
                cpu[name] += step_cpu
                lengths[name] += step_lengths
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
    print(
        f"model={args.model} G={G} prompts={PROMPTS} max_new_tokens={args.max_new_tokens} lr={args.lr:g} "
        f"steps={len(times['visurf'])} each, load average {' '.join(load)}"
    )
    med = {k: (statistics.median(times[k]), statistics.median(cpu[k])) for k in times}
    for name, (wall, cpu_time) in med.items():
        length = statistics.fmean(lengths[name]) if lengths[name] else float("nan")
        print(
            f"{name:<6} median step {wall:.3f} s wall, {cpu_time:.3f} s CPU, mean completion length {length:.1f} tokens"
        )
    print(
        f"visurf / trl = {med['visurf'][0] / med['trl'][0]:.3f} wall, "
        f"{med['visurf'][1] / med['trl'][1]:.3f} CPU   (target <= 0.6)"
    )


if __name__ == "__main__":
    main()
