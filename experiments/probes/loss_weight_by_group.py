"""Where one policy step's loss puts its weight, by data group and answer kind, under each aggregation.

    python experiments/probes/loss_weight_by_group.py [--batches 8] [--out w.json] [Hydra overrides ...]
    python experiments/probes/loss_weight_by_group.py objective=visurf reward_control=all

Builds the run the overrides describe (`visurf.recipes.train.build_run`), draws K rollout batches of
its training data at the starting policy (no step is taken) and, for each aggregation in
`--aggregations`, takes the weight each row's tokens get in the loss: the gradient of
`visurf.algorithms.policy_loss.aggregate` with respect to the per-token loss, summed over the row
(grpo: 1/N_rows whatever the row's length, so each of a short row's tokens weighs more; dapo:
n_row/N_tokens). A row's push is its advantage times that weight. Rows are binned by data group,
rollout or injected label, and whether the answer is `[]` ("nothing there"). Per bin:

- `rows`, `tokens` (mean loss tokens per row);
- `token_weight`: the mean weight of one of its tokens, relative to a token under dapo (1);
- `push_share`: its share of Σ|advantage · row weight| (how much of the step it makes);
- `net_push`: Σ advantage · row weight, per batch (positive: the step raises these answers).

The experience does not depend on the aggregation, so every aggregation is read off the same rollouts.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch

from visurf.algorithms.policy_loss import aggregate


def row_weights(mask: torch.Tensor, mode: str) -> torch.Tensor:
    """[N]: each row's total weight in `aggregate(l, mask, mode)`, i.e. Σ_t ∂loss/∂l_it. mask: [N, C]."""
    per_token = torch.zeros(mask.shape, dtype=torch.float64, requires_grad=True)
    aggregate(per_token, mask, mode, max_completion_length=mask.shape[1]).backward()
    return per_token.grad.sum(-1)


def row_bins(exp, examples: list, group_size: int, texts: list[str]) -> list[tuple[str, str, str]]:
    """(data group, rollout|label, empty|boxes) per row of a ViSurf or RLVR experience.

    Rows are the B·G rollouts in prompt order, then (ViSurf, `how=add`, `when=always`) one label
    per prompt in prompt order."""
    from visurf.rewards.parsing import parse_completion

    bins = []
    rollouts = len(examples) * group_size
    for r, text in enumerate(texts):
        label = bool(exp.is_label[r])
        example = examples[r - rollouts] if label else examples[r // group_size]
        answer = "empty" if parse_completion(text).objects == [] else "boxes"
        bins.append((example.group, "label" if label else "rollout", answer))
    return bins


def tally(batches: list[dict], modes: list[str]) -> dict:
    """Per bin `group/kind/answer`, the figures of the module docstring, pooled over batches."""
    out: dict = defaultdict(lambda: {"rows": 0, "tokens": 0.0})
    for mode in modes:
        total = sum(b["adv"].abs().mul(b["w"][mode]).sum().item() for b in batches)
        sums: dict = defaultdict(lambda: {"abs": 0.0, "net": 0.0, "token_weight": 0.0})
        for b in batches:
            n_tokens = b["mask"].sum().item()
            for r, key in enumerate(b["bins"]):
                n = b["mask"][r].sum().item()
                if n == 0:
                    continue
                w = b["w"][mode][r].item()
                sums[key]["abs"] += abs(b["adv"][r].item()) * w
                sums[key]["net"] += b["adv"][r].item() * w
                sums[key]["token_weight"] += w / n * n_tokens  # dapo's token weight is 1/n_tokens
        for key, s in sums.items():
            name = "/".join(key)
            out[name][mode] = {"push_share": s["abs"] / total, "net_push": s["net"] / len(batches)}
            out[name][mode]["_tw"] = s["token_weight"]
    for b in batches:
        for r, key in enumerate(b["bins"]):
            n = b["mask"][r].sum().item()
            if n:
                out["/".join(key)]["rows"] += 1
                out["/".join(key)]["tokens"] += n
    for d in out.values():
        for mode in modes:
            d[mode]["token_weight"] = d[mode].pop("_tw") / max(d["rows"], 1)
        d["tokens"] = d["tokens"] / max(d["rows"], 1)
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--aggregations", nargs="+", default=["grpo", "dapo"])
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)

    from visurf.config.compose import compose_config
    from visurf.config.validate import validate
    from visurf.recipes.base_model import ensure_model
    from visurf.recipes.train import build_run

    cfg = compose_config(args.overrides)
    validate(cfg)
    ensure_model(cfg.model)
    module, train_examples, _ = build_run(cfg)
    stage = module.schedule.stages[0]
    g, size = int(cfg.rollout.num_generations), int(cfg.train.batch_size)
    order = torch.randperm(
        len(train_examples), generator=torch.Generator().manual_seed(int(cfg.seed))
    ).tolist()
    batches = []
    for i in range(args.batches):
        examples = [train_examples[j] for j in order[i * size : (i + 1) * size]]
        torch.manual_seed(1_000 + i)
        exp = stage.experience(module, examples)
        ids, mask = exp.seqs.ids.cpu(), exp.seqs.mask.cpu()
        texts = [module.processor.decode(row[m > 0]) for row, m in zip(ids, mask)]
        loss_mask = exp.loss_mask.cpu()
        batches.append(
            {
                "adv": exp.advantages.cpu().double(),
                "mask": loss_mask,
                "bins": row_bins(exp, examples, g, texts),
                "w": {mode: row_weights(loss_mask, mode) for mode in args.aggregations},
            }
        )
    result = {
        "overrides": args.overrides,
        "batches": args.batches,
        "prompts_per_batch": size,
        "bins": tally(batches, args.aggregations),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
