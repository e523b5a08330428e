"""Greedy against sampled accuracy of models on the same questions: what RL at a temperature learns.

    python experiments/probes/sampled_accuracy.py MODEL_DIR [MODEL_DIR ...] [--temperature 1.5] [--samples 4]
        [--split val] [--rows 500:900] [-- Hydra overrides, default experiment=pocket data.synth.num_val=2000]

RL samples its rollouts at `rollout.temperature` and the reward it raises is that of its samples;
evaluation decodes greedily. The two can part: a policy that narrows its distribution around its
greedy answer earns more reward per sample without changing a single greedy answer. For each
model directory (a run's `model/`, or a base), this prints accuracy and mean reward of greedy
answers and of `--samples` answers per question sampled at `--temperature`, on rows `--rows` of
`--split` (keep them apart from the questions a run's curves were chosen on). It also prints
the share of questions whose greedy answer is wrong while some sample is right: the only ones
on which a group's reward can teach the policy to change its greedy answer for the better.
"""

from __future__ import annotations

import argparse
import sys

import torch

from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.evaluation.runner import completions
from visurf.models.loading import load_policy
from visurf.rewards import build_reward

DEFAULT_OVERRIDES = ["experiment=pocket", "data.synth.num_val=2000"]


def answers(
    model,
    processor,
    reward_fn,
    examples,
    *,
    num_samples: int,
    temperature: float | None,
    batch_size: int,
    max_new_tokens: int,
) -> list[list[dict]]:
    """The rewards (dicts with `correct`, `total`) of `num_samples` answers per example, one list
    per example; `temperature=None` is greedy (one answer each, as the evaluator decodes)."""
    out = []
    for batch, _, rewards in completions(
        model,
        processor,
        reward_fn,
        examples,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        temperature=temperature,
    ):
        k = len(rewards) // len(batch)  # rows come grouped by example
        out += [rewards[j * k : (j + 1) * k] for j in range(len(batch))]
    return out


def summarise(greedy: list[list[dict]], sampled: list[list[dict]]) -> dict:
    """Accuracy and mean reward of both decodings, and the share of questions RL could turn: greedy
    answer wrong and some sample right (`turnable`), or greedy right and some sample wrong."""

    def mean(rows, key):
        values = [r[key] for answers in rows for r in answers]
        return sum(values) / len(values)

    pairs = list(zip(greedy, sampled))
    return {
        "greedy": {"accuracy": mean(greedy, "correct"), "reward": mean(greedy, "total")},
        "sampled": {"accuracy": mean(sampled, "correct"), "reward": mean(sampled, "total")},
        "turnable": sum(not g[0]["correct"] and any(r["correct"] for r in s) for g, s in pairs) / len(pairs),
        "at_risk": sum(bool(g[0]["correct"]) and not all(r["correct"] for r in s) for g, s in pairs)
        / len(pairs),
        "questions": len(pairs),
        "samples": len(pairs[0][1]) if pairs else 0,
    }


def parse_rows(text: str) -> slice:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return slice(int(start) if start else None, int(end) if end else None)
    except ValueError:
        raise SystemExit(f"--rows takes START:END (e.g. 500:900), got {text!r}") from None


def main(argv: list[str]) -> dict:
    own, overrides = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="experiments/probes/sampled_accuracy.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("models", nargs="+", help="model directories (a run's model/, or a base)")
    parser.add_argument("--temperature", type=float, default=1.5)
    parser.add_argument("--samples", type=int, default=4, help="sampled answers per question")
    parser.add_argument("--split", default="val")
    parser.add_argument("--rows", default="500:900", help="START:END rows of the split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(own)
    if args.temperature <= 0 or args.samples < 1:
        parser.error(
            f"--temperature must be > 0 and --samples >= 1, got {args.temperature} and {args.samples}"
        )
    cfg = compose_config(overrides or DEFAULT_OVERRIDES)
    examples = load_examples(cfg.data, int(cfg.model.frame), args.split)[parse_rows(args.rows)]
    if not examples:
        parser.error(f"rows {args.rows} of the {args.split} split are empty")
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    size = dict(batch_size=int(cfg.eval.batch_size), max_new_tokens=int(cfg.eval.max_new_tokens))
    results = {}
    for path in args.models:
        model, processor = load_policy(cfg.model, path=path)
        model.eval()
        torch.manual_seed(args.seed)
        greedy = answers(model, processor, reward_fn, examples, num_samples=1, temperature=None, **size)
        sampled = answers(
            model,
            processor,
            reward_fn,
            examples,
            num_samples=args.samples,
            temperature=args.temperature,
            **size,
        )
        results[path] = r = summarise(greedy, sampled)
        print(
            f"{path}: {r['questions']} questions; greedy accuracy {r['greedy']['accuracy']:.3f} "
            f"(reward {r['greedy']['reward']:.3f}); sampled at T {args.temperature} x{args.samples}: "
            f"accuracy {r['sampled']['accuracy']:.3f} (reward {r['sampled']['reward']:.3f}); "
            f"greedy wrong, a sample right {r['turnable']:.1%}; greedy right, a sample wrong {r['at_risk']:.1%}",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
