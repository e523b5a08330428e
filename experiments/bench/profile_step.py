"""Where the time of one RLVR and one ViSurf step goes, phase by phase, on the main job's shape.

    python experiments/bench/profile_step.py [--steps 6] [--warmup 2] [--model tiny_base] [--tag after] [--baseline]

Each objective runs through the real recipe (Hydra config, Lightning Trainer, the policy stage)
with the main job's shape (8 prompts x G = 8, 128 new tokens, `reward_control=all` for ViSurf).
While a step runs, the real functions are wrapped with timers, nothing else changes:

- data: the data loader's hand-over between steps and the processor's prompt batch;
- prefill: the decoder's passes over more than one new position while sampling (the prompts);
- decode: the rest of sampling (one-token passes, the sampler's own work);
- reward: the reward function (rollouts and labels);
- scoring forward: token log-probabilities with gradients (the loss's) and without (ℓ_ref, ℓ_old),
  and the loss itself;
- backward: `manual_backward`;
- optimiser: the rest of `_optimise` (gradient clipping, the optimiser and scheduler step);
- logging: `PostTrainModule._log` (Lightning's `self.log` of every metric);
- other: the rest of the step (decoding texts, metrics, the label's rendering, advantages).

With `--baseline`, each objective is also profiled, just before, on the paths the changes of
docs/speed.md replaced (transformers' `generate`, and scoring that runs every row's prompt), so
the two are compared under the same load. Prints each phase's milliseconds per step (median
over the measured steps) and its share of the step, and writes them to
experiments/results/profile/<tag>.md and <tag>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import lightning as L

import visurf.objectives.policy as policy_stage
import visurf.rollout.sampling as sampling
import visurf.rollout.scoring as scoring
from visurf.config.compose import compose_config
from visurf.models.processing import VLProcessor
from visurf.recipes.train import train

PHASES = (
    "data",
    "prefill",
    "decode",
    "reward",
    "scoring forward",
    "backward",
    "optimiser",
    "logging",
    "other",
)
OUT = Path(__file__).resolve().parents[1] / "results" / "profile"


class PhaseClock:
    """Seconds per phase of the step being timed; phases nest (an inner phase's time is taken
    out of its outer one), so the phases of a step add up to its wall time."""

    def __init__(self, now=time.perf_counter):
        self.now = now  # wall time, or the process's CPU time (`--clock cpu`)
        self.open = False  # only time spent inside a training step counts
        self.step: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []  # [phase, start, time taken by inner phases]

    @contextlib.contextmanager
    def phase(self, name: str):
        if not self.open:
            yield
            return
        self._stack.append([name, self.now(), 0.0])
        try:
            yield
        finally:
            name, start, inner = self._stack.pop()
            took = self.now() - start
            self.step[name] += took - inner
            if self._stack:
                self._stack[-1][2] += took

    def inside(self, name: str) -> bool:
        return bool(self._stack) and self._stack[-1][0] == name

    def wrap(self, fn, name):
        def timed(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed


def wrap_sampling(clock: PhaseClock, policy):
    """Decoder passes over more than one new position while sampling are prefill, the rest decode.

    The language model under the policy's head is timed, whether `generate` or visurf's own
    sampler calls it."""
    decoder = policy.get_base_model() if hasattr(policy, "get_base_model") else policy
    decoder = getattr(decoder, "model", decoder)
    forward = decoder.forward

    @functools.wraps(forward)  # generate checks its keyword arguments against the signature
    def timed_forward(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs["inputs_embeds"]
        if ids.shape[1] > 1 and clock.inside("decode"):
            with clock.phase("prefill"):
                return forward(*args, **kwargs)
        return forward(*args, **kwargs)

    decoder.forward = timed_forward
    return clock.wrap(policy_stage.sample, "decode")


class Profiler(L.Callback):
    """Opens the clock for each training step and installs the timers on the module's functions."""

    def __init__(self, clock: PhaseClock):
        self.clock = clock
        self.steps: list[dict[str, float]] = []
        self.lengths: list[float] = []
        self._start = self._end = None

    def on_train_start(self, trainer, module):
        c = self.clock
        policy_stage.sample = wrap_sampling(c, module.policy)
        policy_stage.token_logps = c.wrap(policy_stage.token_logps, "scoring forward")
        module.reward_fn = c.wrap(module.reward_fn, "reward")
        module.manual_backward = c.wrap(module.manual_backward, "backward")
        module._optimise = c.wrap(module._optimise, "optimiser")
        module._log = c.wrap(module._log, "logging")
        module.reference_logps = c.wrap(module.reference_logps, "scoring forward")
        for stage in module.schedule.stages:
            stage.loss = c.wrap(stage.loss, "scoring forward")

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = self.clock.now()
        self.clock.step = defaultdict(float)
        if self._end is not None:
            self.clock.step["data"] += self._start - self._end
        self.clock.open = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._end = self.clock.now()
        self.clock.open = False
        step = dict(self.clock.step)
        total = self._end - self._start + step.get("data", 0.0)
        step["other"] = total - sum(step.values())
        step["total"] = total
        self.steps.append(step)
        self.lengths.append(float(trainer.callback_metrics.get("train/completion_length", float("nan"))))


def profile(objective: str, args, out_dir: str) -> tuple[dict[str, float], float]:
    """Median seconds per phase (and of the whole step) of `objective`, and its mean completion length."""
    overrides = [
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
    if objective == "visurf":
        overrides.append("reward_control=all")
    clock = PhaseClock(time.process_time if args.clock == "cpu" else time.perf_counter)
    profiler = Profiler(clock)
    processor_call = VLProcessor.__call__
    sample, token_logps = policy_stage.sample, policy_stage.token_logps
    VLProcessor.__call__ = clock.wrap(processor_call, "data")
    try:
        train(compose_config(overrides), f"{out_dir}/{objective}", callbacks=[profiler])
    finally:
        VLProcessor.__call__ = processor_call
        policy_stage.sample, policy_stage.token_logps = sample, token_logps
    steps = profiler.steps[args.warmup :]
    medians = {p: statistics.median(s.get(p, 0.0) for s in steps) for p in (*PHASES, "total")}
    return medians, statistics.fmean(profiler.lengths[args.warmup :])


@contextlib.contextmanager
def every_row_prompted():
    """The paths before one prefill per prompt: `generate`, and scoring that runs every row's prompt."""
    saved = sampling.supports_shared_prompts, scoring.supports_shared_prompts
    sampling.supports_shared_prompts = scoring.supports_shared_prompts = lambda *args: False
    try:
        yield
    finally:
        sampling.supports_shared_prompts, scoring.supports_shared_prompts = saved


def table(results: dict, args) -> str:
    lines = [
        f"model={args.model} prompts=8 G=8 max_new_tokens={args.max_new_tokens} "
        f"steps={args.steps} (after {args.warmup} warm-up), median {args.clock} ms per step",
        "",
        "| phase | " + " | ".join(f"{o} ms | {o} share" for o in results) + " |",
        "| --- | " + " | ".join("--- | ---" for _ in results) + " |",
    ]
    for phase in (*PHASES, "total"):
        cells = []
        for medians, _ in results.values():
            # The phases' medians need not add up to the median step: shares are of their sum.
            share = medians[phase] / sum(medians[p] for p in PHASES)
            cells.append(
                f"{medians[phase] * 1000:.0f} | {share:.1%}"
                if phase != "total"
                else f"{medians[phase] * 1000:.0f} | "
            )
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("mean completion length: " + ", ".join(f"{o} {n:.1f}" for o, (_, n) in results.items()))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--model", default="tiny_base")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--tag", default=None, help="write experiments/results/profile/<tag>.md and .json")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or the process's CPU time (one thread: what other work on the machine moves much less)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also profile each objective with generate and the padded scoring pass, in the same run",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        results = {}
        for objective in ("rlvr", "visurf"):
            if args.baseline:
                with every_row_prompted():
                    results[f"{objective} (baseline)"] = profile(objective, args, out)
            results[objective] = profile(objective, args, out)
    text = table(results, args)
    print(text)
    if args.tag:
        args.out.mkdir(parents=True, exist_ok=True)
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
        (args.out / f"{args.tag}.md").write_text(f"{text}\nload average at the end: {' '.join(load)}\n")
        record = {o: {"seconds": m, "completion_length": n} for o, (m, n) in results.items()}
        record["load_average"] = load
        (args.out / f"{args.tag}.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
