"""A finished run and its base on the same questions: greedy accuracy against the accuracy of its rollouts.

    python experiments/probes/sampled_vs_greedy.py RUN_DIR [--split val] [--n 200] [--samples 8]
        [--out FILE.json] [--temperature T] [--batch-size B] [--base MODEL_DIR] [--seed 0] [--device auto]

A run's `train/accuracy` is the mean correctness of its rollouts, sampled at `rollout.temperature`;
its evaluation decodes greedily. This probe takes the first `--n` questions of `--split` and, for
the run's base and for its trained weights, measures both on the same questions, per data group:

- greedy: `visurf.evaluation.runner.evaluate`, with the run's `eval.batch_size` and
  `eval.max_new_tokens` (what `python -m visurf.eval checkpoint=RUN_DIR split=S limit=N` reports);
- sampled: the run's own policy stage (`PolicyStage.experience`, as a training step calls it)
  on batches of `--batch-size` prompts (default: the run's `train.batch_size`), with
  `rollout.num_generations` set to `--samples`: the same sampler, knobs (temperature, top_p,
  `rollout.max_new_tokens`), reward and correctness as the run's rollouts. Per question, the
  mean correctness of its samples; `any_correct` is the share of questions with a right sample.
  `stage_accuracy` is the stage's own `accuracy` metric (what `train/accuracy` logs) averaged
  over batches by their rows, beside `empty_answer_rate` and `truncated_rate`.

The KL term and extra passes (`objective.beta`, `objective.mu`) are switched off in the probe's
copy of the config: they change the loss, not the rollouts or their scores. Base and trained
model draw with the same seeds per batch.

The base is the run config's model as `visurf.eval checkpoint=base` loads it: a `tiny_base`
comes from `$VISURF_CACHE` (the cache the run was made with; the probe never builds one),
or `--base MODEL_DIR`. Where the split is the run's evaluation split, the greedy answers are
checked against the run's own outcome files (first and last evaluation): `agrees_with_run`
is the share of questions with the same outcome, a check that the right base was loaded.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import torch

GROUPS = ("known", "novel", "non_object", "multi")
NAME = "sampled_vs_greedy.py"


class ProbeError(ValueError):
    """An argument or run that the probe cannot take; the message names it."""


def load_models(run_dir: Path, base: Path | None):
    """(config, {"base": loader, "trained": loader}) of a finished run; loaders return (model, processor)."""
    from visurf.models.loading import load_policy
    from visurf.runs.resolve import locate
    from visurf.runs.weights import load_trained

    trained = locate(run_dir)
    if trained.run is None:
        raise ProbeError(f"{run_dir} is not a run directory (it has no config.yaml)")
    cfg = trained.run.read_config()
    if not any(spec.kind == "policy" for spec in cfg.objective.stages):
        raise ProbeError(
            f"{run_dir} has no policy stage (objective {cfg.objective.name}): it samples no rollouts"
        )
    if base is not None and not (base / "config.json").is_file():
        raise ProbeError(f"--base {base} holds no model (looked for {base / 'config.json'})")
    loaders = {
        "base": (lambda: load_policy(cfg.model, path=base)) if base else (lambda: load_trained(cfg, None)),
        "trained": lambda: load_trained(cfg, trained.weights),
    }
    return cfg, trained.run, loaders


def probe_config(cfg, samples: int, temperature: float | None):
    """The run's config as the probe's policy stage takes it (see the module docstring)."""
    out = copy.deepcopy(cfg)
    out.rollout.num_generations = samples
    if temperature is not None:
        out.rollout.temperature = temperature
    out.objective.beta = 0.0
    out.objective.mu = 1
    return out


def greedy(model, processor, reward_fn, examples: list, cfg, device) -> list[float]:
    """Each question's greedy correctness, from the one evaluator."""
    from visurf.evaluation.runner import evaluate

    outcomes: list = []
    evaluate(
        model,
        processor,
        reward_fn,
        examples,
        batch_size=int(cfg.eval.batch_size),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        device=device,
        outcomes=outcomes,
    )
    return [float(correct) for _, _, correct in outcomes]


def sampled(module, stage, examples: list, batch_size: int, seed: int) -> tuple[list[list[float]], dict]:
    """Each question's samples' correctness [n][S], and the stage's own metrics averaged by rows."""
    per_question, sums, rows = [], {"accuracy": 0.0, "empty_answer_rate": 0.0, "truncated_rate": 0.0}, 0
    for b, start in enumerate(range(0, len(examples), batch_size)):
        batch = examples[start : start + batch_size]
        torch.manual_seed(seed * 1_000_003 + b * 97)  # as a training step seeds its batch
        exp = stage.experience(module, batch)
        per_question += exp.rollout_correct.float().tolist()
        n = exp.rollout_correct.numel()
        for key in sums:
            sums[key] += exp.metrics[key] * n
        rows += n
    return per_question, {("stage_accuracy" if k == "accuracy" else k): v / rows for k, v in sums.items()}


def summarise(groups: list[str], greedy_: list[float], samples: list[list[float]], metrics: dict) -> dict:
    """One model's greedy and sampled accuracy, overall and per data group."""
    means = [sum(s) / len(s) for s in samples]

    def part(keep: list[int]) -> dict:
        n = len(keep)
        return {
            "n": n,
            "greedy": sum(greedy_[i] for i in keep) / n,
            "sampled": sum(means[i] for i in keep) / n,
            "any_correct": sum(max(samples[i]) for i in keep) / n,
        }

    out = {"all": part(list(range(len(groups))))}
    for g in [*GROUPS, *sorted(set(groups) - set(GROUPS))]:
        keep = [i for i, name in enumerate(groups) if name == g]
        if keep:
            out[g] = part(keep)
    return {"by_group": out, **metrics}


def paired(groups: list[str], before: list[float], after: list[float]) -> dict:
    """Per data group and overall: mean of after - before over questions, with its standard error."""

    def stat(keep: list[int]) -> dict:
        d = [after[i] - before[i] for i in keep]
        n, mean = len(d), sum(d) / len(d)
        sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else math.nan
        return {"mean": mean, "se": sd / math.sqrt(n), "n": n}

    out = {"all": stat(list(range(len(groups))))}
    for g in dict.fromkeys(groups):
        out[g] = stat([i for i, name in enumerate(groups) if name == g])
    return out


def agreement(run, split: str, cfg, indices: list[int], greedy_: list[float], which: str) -> float | None:
    """Share of questions whose greedy outcome matches the run's own first (`base`) or last
    (`trained`) evaluation; None where the run did not evaluate this split or these questions."""
    files = run.evaluations()
    if split != str(cfg.data.test_split) or not files:
        return None
    steps = sorted(files)
    recorded = {
        row[0]: float(row[2]) for row in json.loads(files[steps[0 if which == "base" else -1]].read_text())
    }
    if not all(i in recorded for i in indices):
        return None
    return sum(recorded[i] == g for i, g in zip(indices, greedy_)) / len(indices)


def measure(args, cfg, run, loaders) -> dict:
    """Both models on the same questions: per model, greedy and sampled accuracy by group."""
    from visurf.cli.eval import pick_device
    from visurf.data.sources import load_examples
    from visurf.objectives import build_schedule
    from visurf.rewards import build_reward
    from visurf.training.module import PostTrainModule

    device = pick_device(args.device)
    examples = load_examples(cfg.data, int(cfg.model.frame), args.split, limit=args.n)
    groups, indices = [e.group for e in examples], [e.index for e in examples]
    pcfg = probe_config(cfg, args.samples, args.temperature)
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    batch_size = args.batch_size or int(cfg.train.batch_size)
    models, answers = {}, {}
    for which, load in loaders.items():
        model, processor = load()
        model.to(device)
        greedy_ = greedy(model, processor, reward_fn, examples, cfg, device)
        module = PostTrainModule(pcfg, model, processor, reward_fn, build_schedule(pcfg)).to(device)
        stage = next(s for s in module.schedule.stages if s.kind == "policy")
        samples, metrics = sampled(module, stage, examples, batch_size, args.seed)
        models[which] = summarise(groups, greedy_, samples, metrics)
        models[which]["agrees_with_run"] = agreement(run, args.split, cfg, indices, greedy_, which)
        answers[which] = (greedy_, [sum(s) / len(s) for s in samples])
        del model, module
    return {
        "run": str(args.run),
        "split": args.split,
        "questions": len(examples),
        "samples": args.samples,
        "temperature": float(pcfg.rollout.temperature),
        "top_p": float(pcfg.rollout.top_p),
        "rollout_max_new_tokens": int(pcfg.rollout.max_new_tokens),
        "prompts_per_batch": batch_size,
        "seed": args.seed,
        "models": models,
        "change": {
            kind: paired(groups, answers["base"][k], answers["trained"][k])
            for k, kind in enumerate(("greedy", "sampled"))
        },
        "per_question": [
            {
                "index": i,
                "group": g,
                **{
                    f"{w}_{kind}": answers[w][k][q]
                    for w in answers
                    for k, kind in enumerate(("greedy", "sampled"))
                },
            }
            for q, (i, g) in enumerate(zip(indices, groups))
        ],
    }


def table(result: dict) -> str:
    """The printed table: per group, greedy and sampled accuracy of base and trained, and the changes."""
    base, trained = result["models"]["base"]["by_group"], result["models"]["trained"]["by_group"]
    t, s = result["temperature"], result["samples"]
    lines = [
        f"{result['run']}: {result['questions']} {result['split']} questions; sampled at T {t:g}, "
        f"{s} samples each (top_p {result['top_p']:g}, {result['rollout_max_new_tokens']} new tokens)",
        f"{'group':<11}{'n':>5}  {'greedy base → trained':<22}{'Δ ± se':<16}{'sampled base → trained':<24}"
        f"{'Δ ± se':<16}{'any right':<14}",
    ]
    for g in base:
        dg, ds = result["change"]["greedy"][g], result["change"]["sampled"][g]
        lines.append(
            f"{g:<11}{base[g]['n']:>5}  {base[g]['greedy']:.3f} → {trained[g]['greedy']:.3f}{'':<9}"
            f"{dg['mean']:+.3f} ± {dg['se']:.3f}  {base[g]['sampled']:.3f} → {trained[g]['sampled']:.3f}{'':<11}"
            f"{ds['mean']:+.3f} ± {ds['se']:.3f}  {base[g]['any_correct']:.2f} → {trained[g]['any_correct']:.2f}"
        )
    for which in ("base", "trained"):
        m = result["models"][which]
        agree = "—" if m["agrees_with_run"] is None else f"{m['agrees_with_run']:.3f}"
        lines.append(
            f"{which}: stage accuracy {m['stage_accuracy']:.3f}, [] answers {m['empty_answer_rate']:.3f}, "
            f"truncated {m['truncated_rate']:.3f}; greedy outcomes as the run recorded them: {agree}"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"experiments/probes/{NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory (config.yaml, model/)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=200, help="the first N questions of the split")
    parser.add_argument("--samples", type=int, default=8, help="samples per question")
    parser.add_argument(
        "--temperature", type=float, default=None, help="default: the run's rollout.temperature"
    )
    parser.add_argument(
        "--batch-size", type=int, default=0, help="prompts per sampling batch (default: the run's)"
    )
    parser.add_argument(
        "--base", type=Path, default=None, help="the base model directory (default: the run's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    for name in ("n", "samples"):
        if getattr(args, name) < 1:
            raise ProbeError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.batch_size < 0:
        raise ProbeError(f"--batch-size must be >= 1 (0: the run's), got {args.batch_size}")
    if args.temperature is not None and args.temperature <= 0:
        raise ProbeError(f"--temperature must be > 0, got {args.temperature}")
    return args


def main(argv: list[str] | None = None) -> dict:
    from visurf.cli.args import reported

    with reported(NAME, extra=(ProbeError,)):
        args = parse(argv)
        cfg, run, loaders = load_models(args.run, args.base)
        result = measure(args, cfg, run, loaders)
    print(table(result), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
