"""How much of one RL step's gradient is signal: gradients of independent batches at one policy.

    python experiments/probes/gradient_snr.py [--batches 8] [--null] [--by-kind] [Hydra overrides ...]
    python experiments/probes/gradient_snr.py experiment=pocket objective=rlvr --batches 8

Builds the run the overrides describe (`visurf.recipes.train.build_run`: the same module, stage, reward
and data a run trains), then for K disjoint rollout batches of its training data computes the
stage's loss gradient at the same weights, without a step. A batch's gradient is g_k = s + n_k:
s the expected gradient (what the rewards ask for), n_k the sampling noise of that batch. So

- mean over pairs j != k of g_j . g_k estimates |s|^2 (the noise of independent batches cancels),
- mean over k of |g_k|^2 estimates |s|^2 + E|n|^2,

and `signal_share` = |s|^2 / E|g|^2 is the share of one step's gradient energy that is signal.
Adam scales each parameter's step to about lr whatever its gradient's size, so what it follows is
each parameter's own ratio: `adam_signal_share` is the mean over parameters of
mean_k(g)^2 / mean_k(g^2), bias-corrected for K batches (0 where a parameter's gradient is pure
noise, 1 where every batch agrees). `--null` shuffles each group's advantages among its members
(experiments/probes/null_advantages.py), the control whose signal is 0 by construction.

`--by-kind` (RLVR) also splits each batch's gradient by the kind of its groups, from the
policy's greedy answer to the prompt: `turnable` (greedy answer wrong, some rollout right: the
only groups whose rewards can turn a greedy answer right), `at_risk` (greedy right, some rollout
wrong) and `other` (every rollout as right or as wrong as the greedy answer). Each kind's part
is the gradient of the loss with the other groups' advantages set to 0; the parts add up to the
batch's gradient (exactly where the KL term has no gradient: β = 0, or the policy at its
reference, as when a run starts). Per kind: the share of prompts, `push_share` (mean over
batches of part . g / |g|^2: how much of the step it makes; the kinds' shares add up to 1),
`energy_share` (E|part|^2 / E|g|^2) and `signal_share` (the part's projection on the other
batches' gradients, over |s|^2: noisy, as |s|^2 itself is).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def batch_gradients(module, stage, batches: list[list]) -> torch.Tensor:
    """[K, P]: the flattened loss gradient of each batch at the module's current weights."""
    params = [p for p in module.policy.parameters() if p.requires_grad]
    rows = []
    for i, examples in enumerate(batches):
        torch.manual_seed(1_000 + i)
        exp = stage.experience(module, examples)
        module.policy.zero_grad(set_to_none=True)
        loss, _ = stage.loss(module, exp)
        loss.backward()
        rows.append(
            torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        )
    module.policy.zero_grad(set_to_none=True)
    return torch.stack(rows).double()


KINDS = ("turnable", "at_risk", "other")


def group_kinds(greedy_correct: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """[B] index into KINDS of each group, from its prompt's greedy answer [B] and its rollouts [B, G]
    (booleans: right or not)."""
    turnable = ~greedy_correct & correct.any(-1)
    at_risk = greedy_correct & ~correct.all(-1)
    return torch.where(turnable, 0, torch.where(at_risk, 1, 2))


def kind_gradients(module, stage, batches: list[list]) -> tuple[torch.Tensor, torch.Tensor]:
    """([K, len(KINDS), P] each batch's gradient split by the kind of its groups, [K, len(KINDS)]
    the share of each batch's prompts of each kind). The same rollouts as `batch_gradients`."""
    from dataclasses import replace

    from visurf.evaluation.runner import completions

    if stage.inject_label:
        raise ValueError("--by-kind splits RLVR groups; an injected label is no rollout of the policy")
    params = [p for p in module.policy.parameters() if p.requires_grad]
    g = int(stage.rollout.num_generations)
    parts, shares = [], []
    for i, examples in enumerate(batches):
        torch.manual_seed(1_000 + i)
        exp = stage.experience(module, examples)
        proc, reward_fn = module.processor, module.reward_fn
        greedy = [
            bool(r["correct"])
            for _, _, rewards in completions(
                module.policy,
                proc,
                reward_fn,
                examples,
                batch_size=len(examples),
                max_new_tokens=int(stage.rollout.max_new_tokens),
            )
            for r in rewards
        ]
        kinds = group_kinds(torch.tensor(greedy), exp.rollout_correct)
        rows = []
        for k in range(len(KINDS)):
            keep = (kinds == k).repeat_interleave(g).to(exp.advantages.device)
            module.policy.zero_grad(set_to_none=True)
            loss, _ = stage.loss(module, replace(exp, advantages=exp.advantages * keep))
            loss.backward()
            rows.append(
                torch.cat(
                    [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
                )
            )
        parts.append(torch.stack(rows))
        shares.append(torch.bincount(kinds, minlength=len(KINDS)).double() / len(examples))
    module.policy.zero_grad(set_to_none=True)
    return torch.stack(parts).double(), torch.stack(shares)


def by_kind(parts: torch.Tensor, prompt_shares: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per kind, from `kind_gradients`' parts [K, kinds, P]: see the module docstring."""
    grads = parts.sum(1)  # [K, P]
    k = grads.shape[0]
    own = grads.pow(2).sum(-1)  # [K]
    gram = grads @ grads.T
    signal = (gram.sum() - gram.diagonal().sum()) / (k * (k - 1))
    out = {}
    for j, name in enumerate(KINDS):
        part = parts[:, j]  # [K, P]
        cross = part @ grads.T  # [K, K]: part of batch a . gradient of batch b
        out[name] = {
            "prompt_share": prompt_shares[:, j].mean().item(),
            "push_share": (cross.diagonal() / own).mean().item(),
            "energy_share": (part.pow(2).sum(-1).mean() / own.mean()).item(),
            "signal_share": ((cross.sum() - cross.diagonal().sum()) / (k * (k - 1)) / signal).item(),
        }
    return out


def snr(grads: torch.Tensor) -> dict[str, float]:
    """Signal estimates from K >= 2 independent batch gradients [K, P] (see the module docstring)."""
    k = grads.shape[0]
    if k < 2:
        raise ValueError(f"need at least 2 batches, got {k}")
    gram = grads @ grads.T  # [K, K]
    energy = gram.diagonal().mean()
    signal = (gram.sum() - gram.diagonal().sum()) / (k * (k - 1))
    mean, square = grads.mean(0), grads.pow(2).mean(0)
    # E[mean^2] = s^2 + var/K and E[square] = s^2 + var, so s^2 = (K mean^2 - square) / (K - 1).
    per_param_signal = ((k * mean.pow(2) - square) / (k - 1)).clamp(min=0)
    active = square > 0
    adam_share = (per_param_signal[active] / square[active]).clamp(max=1).mean()
    return {
        "batches": k,
        "grad_energy": energy.item(),
        "signal_energy": signal.item(),
        "signal_share": (signal / energy).item(),
        "adam_signal_share": adam_share.item(),
        "mean_pairwise_cosine": (
            (gram / gram.diagonal().sqrt().outer(gram.diagonal().sqrt())).sum() - k
        ).item()
        / (k * (k - 1)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--null", action="store_true", help="shuffle each group's advantages (the control)")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    parser.add_argument(
        "--by-kind", action="store_true", help="split the gradient by the kind of group (RLVR)"
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    import null_advantages  # noqa: F401  (beside this file: registers the `shuffled` estimator)

    from visurf.config.compose import compose_config
    from visurf.config.validate import validate
    from visurf.recipes.train import build_run

    null = ["objective.advantage_estimator=shuffled"] if args.null else []
    cfg = compose_config([*args.overrides, *null])
    validate(cfg)  # as a run does: a bad override is refused before anything is built
    module, train_examples, _ = build_run(cfg)
    stage = module.schedule.stages[0]
    if stage.kind != "policy":
        raise ValueError(
            f"the first stage of objective={cfg.objective.name} is {stage.kind!r}; this probes policy stages"
        )
    size = int(cfg.train.batch_size)
    if len(train_examples) < args.batches * size:
        raise ValueError(
            f"{args.batches} batches of {size} need {args.batches * size} examples, have {len(train_examples)}"
        )
    generator = torch.Generator().manual_seed(int(cfg.seed))
    order = torch.randperm(len(train_examples), generator=generator).tolist()
    batches = [[train_examples[j] for j in order[i * size : (i + 1) * size]] for i in range(args.batches)]

    if args.by_kind:
        parts, shares = kind_gradients(module, stage, batches)
        result = snr(parts.sum(1))
        result["by_kind"] = by_kind(parts, shares)
    else:
        result = snr(batch_gradients(module, stage, batches))
    result.update(null=args.null, overrides=args.overrides, prompts_per_batch=size)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
