"""The policy stage: RLVR (GRPO family) and, with `inject_label`, ViSurf and its neighbours.

Collect: sample G completions per prompt, score them, (ViSurf) render and score the label and
let it enter the groups the `injection` flags say, the way they say (docs/injection.md), under
the reward-control flags (docs/reward_control.md), form group advantages. Loss: the clipped
surrogate on rollouts, the label's own term on labels, plus β·KL to the reference, normalised by
counts over all processes. With `inject_label=False` no label row exists and the loss is exactly
the RLVR loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from visurf.algorithms import (
    Injection,
    entering_groups,
    group_advantages,
    group_members,
    injected_advantages,
    label_rewards,
    policy_loss,
)
from visurf.objectives.diagnostics import sampled_entropy, spread_diagnostics
from visurf.objectives.experience import Experience
from visurf.objectives.registry import register_stage
from visurf.reward_control import RewardControl, exempt_think_reward, mask_think_tokens, render_label
from visurf.rewards.parsing import parse_completion
from visurf.rollout import Sequences, concat, pad_completions, sample, select_prompts, token_logps
from visurf.training.distributed import generation_context


@register_stage("policy")
class PolicyStage:
    spec_keys = ("inject_label",)

    def __init__(
        self,
        objective_cfg,
        rollout_cfg,
        control: RewardControl,
        inject_label: bool,
        injection: Injection | None = None,
    ):
        self.cfg = objective_cfg
        self.rollout = rollout_cfg
        self.control = control
        self.inject_label = inject_label
        self.injection = injection or Injection()
        self.passes = int(objective_cfg.mu)

    @classmethod
    def from_config(cls, spec, cfg) -> PolicyStage:
        control = RewardControl.from_config(cfg.reward_control)
        injection = Injection.from_config(cfg.get("injection"))
        return cls(cfg.objective, cfg.rollout, control, bool(spec.get("inject_label", False)), injection)

    @staticmethod
    def title(spec) -> str:
        return "ViSurf" if spec.get("inject_label", False) else "RLVR"

    def on_start(self, module) -> None:
        # The reference is the policy as this stage starts (after an SFT stage: the SFT result).
        if self.cfg.beta > 0:
            module.reset_reference()

    @torch.no_grad()
    def experience(self, module, examples: list) -> Experience:
        proc, device = module.processor, module.device
        g, b = int(self.rollout.num_generations), len(examples)
        inputs = module.to_device(proc([e.prompt for e in examples], [e.image for e in examples]))
        with generation_context(module) as generate_kwargs:  # FSDP: gathered root, synced ranks
            seqs = sample(
                module.policy,
                inputs,
                g,
                max_new_tokens=int(self.rollout.max_new_tokens),
                temperature=float(self.rollout.temperature),
                top_p=float(self.rollout.top_p),
                eos_id=proc.eos_token_id,
                pad_id=proc.pad_token_id,
                suppress_ids=proc.vision_token_ids,
                **generate_kwargs,
            )
        texts = [proc.decode(ids[m > 0]) for ids, m in zip(seqs.ids, seqs.mask)]
        scores = [
            module.reward_fn(t, examples[i // g].solution, examples[i // g].width, examples[i // g].height)
            for i, t in enumerate(texts)
        ]
        totals = torch.tensor([s["total"] for s in scores], dtype=torch.float32).view(b, g)
        metrics = rollout_metrics(texts, scores, seqs, g)

        correct = torch.tensor([bool(s["correct"]) for s in scores]).view(b, g)
        loss_mask = seqs.mask.clone()
        if self.cfg.mask_truncated:
            loss_mask[seqs.truncated] = 0
        if self.inject_label:
            seqs, loss_mask, flat_adv, is_label = self._inject(
                module, examples, inputs, texts, totals, correct.float(), seqs, loss_mask, metrics
            )
        else:
            flat_adv = group_advantages(totals, self.cfg.scale_rewards).reshape(-1)
            is_label = torch.zeros(b * g, dtype=torch.bool)
        metrics["advantage_abs"] = flat_adv.abs().mean().item()

        exp = Experience(
            seqs,
            loss_mask.to(device),
            flat_adv.to(device),
            is_label.to(device),
            metrics=metrics,
            rollout_correct=correct,
        )
        if self.passes > 1:  # ℓ_old is needed apart from ℓ_θ only when a batch is reused
            exp.old_logp = self.scores(module, seqs)
        if self.cfg.beta > 0:
            exp.ref_logp = module.reference_logps(seqs, float(self.rollout.temperature))
        return exp

    def _inject(self, module, examples, inputs, texts, totals, correct, seqs, loss_mask, metrics):
        """The label enters its groups (`injection`): rows, loss mask, advantages and label flags.

        Rollout rows a label replaces leave the batch; labels exist only for the groups they enter.
        """
        inj, (b, g) = self.injection, totals.shape
        enters = entering_groups(correct, inj.when)
        members = group_members(enters, g, inj.how)
        groups = enters.nonzero().squeeze(-1).tolist()
        scored = torch.zeros(b, dtype=torch.float32)  # under bf16-true the default dtype is bf16
        label_seqs = None
        if groups:
            label_seqs, label_scored, spans, label_metrics = self._labels(
                module, examples, inputs, texts, totals, groups, members
            )
            scored[groups] = label_scored
        else:
            label_metrics = {"label/reward": 0.0, "label/accuracy": 0.0}
        metrics.update(label_metrics)
        metrics["label/entered"] = enters.float().mean().item()

        maximum = getattr(module.reward_fn, "max_total", None) if inj.label_reward == "maximum" else None
        if inj.label_reward == "maximum" and maximum is None:
            raise ValueError(
                f"injection.label_reward=maximum needs a reward with a max_total; "
                f"{type(module.reward_fn).__name__} has none"
            )
        given = label_rewards(scored, inj.label_reward, maximum)
        smoothed = inj.label_reward == "smoothed"
        used = self.control.label_reward(totals, given, members) if smoothed else given
        scale = self.cfg.scale_rewards
        rollout_adv, label_adv = injected_advantages(totals, used, enters, inj.how, scale)
        # Before control: the advantage the label would have with the reward it was given.
        raw = label_adv if used is given else injected_advantages(totals, given, enters, inj.how, scale)[1]
        if smoothed:
            label_adv = self.control.label_advantage(label_adv)
        # Label metrics are means over the groups the label entered (0 if none).
        entered = enters.float().sum().clamp(min=1)
        metrics["label/reward_used"] = (used * enters).sum().item() / entered.item()
        metrics["label/advantage_raw"] = (raw * enters).sum().item() / entered.item()
        metrics["label/advantage"] = (label_adv * enters).sum().item() / entered.item()

        kept = members.reshape(-1)
        flat_adv = rollout_adv.reshape(-1)[kept]
        if not kept.all():
            rows = kept.nonzero().squeeze(-1).to(seqs.ids.device)
            seqs = Sequences(
                select_prompts(seqs.prompt, rows), seqs.ids[rows], seqs.mask[rows], seqs.truncated[rows]
            )
            loss_mask = loss_mask[rows]
        is_label = torch.zeros(flat_adv.shape[0], dtype=torch.bool)
        if label_seqs is not None:
            label_mask = label_seqs.mask.clone()
            if self.control.no_think:
                label_mask = mask_think_tokens(label_mask, spans)
            seqs = concat(seqs, label_seqs, module.processor.pad_token_id)
            width = seqs.ids.shape[1]
            loss_mask = torch.cat([_widen(loss_mask, width), _widen(label_mask, width)])
            is_label = torch.cat([is_label, torch.ones(len(groups), dtype=torch.bool)])
            flat_adv = torch.cat([flat_adv, label_adv[enters]])
        return seqs, loss_mask, flat_adv, is_label

    def _labels(self, module, examples, inputs, texts, totals, groups, members):
        """The label of each group in `groups`, its reward as scored and its think-token span.

        `align` takes the think text from the rollouts that stay in the group (`members`).
        """
        proc, g = module.processor, int(self.rollout.num_generations)
        rows, label_totals, spans, label_scores = [], [], [], []
        for i in groups:
            ex = examples[i]
            kept = [j for j in range(g) if members[i, j]]
            label = render_label(
                ex, [texts[i * g + j] for j in kept], [float(totals[i, j]) for j in kept], self.control.align
            )
            score = module.reward_fn(label.text, ex.solution, ex.width, ex.height)
            if self.control.no_think:
                score = exempt_think_reward(score)
            ids, starts = proc.completion_tokens(label.text)
            # The think segment's tokens are those holding any think text; a token that crosses
            # into the answer (`><`) holds both and counts as think: no_think supervises answer text only.
            num_think = sum(start < len(label.think_part) for start in starts)
            rows.append(ids)
            spans.append((0, num_think) if num_think else None)
            label_totals.append(score["total"])
            label_scores.append(score)
        ids, mask = pad_completions(rows, proc.pad_token_id, proc.eos_token_id)
        prompt = inputs  # one label per prompt: the prompt batch as it is
        if len(groups) < len(examples):
            prompt = select_prompts(inputs, torch.tensor(groups, device=inputs["input_ids"].device))
        label_seqs = Sequences(
            prompt,
            ids.to(module.device),
            mask.to(module.device),
            torch.zeros(len(groups), dtype=torch.bool, device=module.device),
        )
        metrics = {"label/reward": sum(label_totals) / len(label_totals)}
        metrics["label/accuracy"] = sum(s["correct"] for s in label_scores) / len(label_scores)
        return label_seqs, torch.tensor(label_totals, dtype=torch.float32), spans, metrics

    def scores(self, module, seqs) -> torch.Tensor:
        """The policy's ℓ of `seqs` at the sampling temperature, as the rollouts were drawn (labels alike)."""
        return token_logps(
            module.policy, seqs, module.micro_batch_size, temperature=float(self.rollout.temperature)
        )

    def loss(self, module, exp: Experience) -> tuple[torch.Tensor, dict]:
        logp = self.scores(module, exp.seqs)
        old = exp.old_logp if exp.old_logp is not None else logp.detach()
        tokens, rows, world = global_counts(exp.loss_mask)
        loss, stats = policy_loss(
            logp,
            old,
            exp.ref_logp,
            exp.advantages,
            exp.loss_mask,
            is_label=exp.is_label,
            beta=float(self.cfg.beta),
            eps_low=float(self.cfg.epsilon_low),
            eps_high=float(self.cfg.epsilon_high),
            aggregation=str(self.cfg.loss_aggregation),
            max_completion_length=int(self.rollout.max_new_tokens),
            kl_on_label=bool(self.cfg.kl_on_label),
            label_ratio=self.injection.label_ratio,
            label_gamma=float(self.injection.label_gamma),
            global_tokens=tokens,
            global_rows=rows,
            world_size=world,
        )
        rollouts = ~exp.is_label
        stats["entropy"] = sampled_entropy(logp[rollouts], exp.seqs.mask[rollouts])
        return loss, stats


def global_counts(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(active tokens, rows) of the loss mask `[N, C]` summed over all processes, and their number.

    The loss divides by these (`visurf.algorithms.aggregate`), so that the processes' averaged
    gradients are the gradient of the whole batch, however its tokens and rows are spread. Every
    process calls this once per loss pass (one all-reduce); with one process nothing is reduced.
    """
    counts = torch.stack(
        [mask.sum().to(torch.float64), torch.tensor(float(mask.shape[0]), dtype=torch.float64)]
    )
    counts = counts.to(mask.device)
    world = 1
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        world = dist.get_world_size()
        dist.all_reduce(counts)
    return counts[0], counts[1], world


def _widen(mask: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(mask, (0, width - mask.shape[1]))


def rollout_metrics(
    texts: list[str], scores: list[dict], seqs: Sequences, group_size: int
) -> dict[str, float]:
    n = len(texts)
    metrics = {"reward": sum(s["total"] for s in scores) / n}
    for key in scores[0]:
        if key not in ("total", "correct"):
            metrics[f"reward/{key}"] = sum(s[key] for s in scores) / n
    parsed = [parse_completion(t) for t in texts]
    metrics["accuracy"] = sum(s["correct"] for s in scores) / n
    metrics["format_rate"] = sum(p.objects is not None for p in parsed) / n
    metrics["strict_format_rate"] = sum(p.strict_format for p in parsed) / n
    # `[]` ("nothing there") is the answer RL most easily drifts onto or off (experiments/README.md).
    metrics["empty_answer_rate"] = sum(p.objects == [] for p in parsed) / n
    metrics["completion_length"] = seqs.mask.sum(-1).float().mean().item()
    metrics["truncated_rate"] = seqs.truncated.float().mean().item()
    names = [k for k in scores[0] if k not in ("total", "correct")]
    components = torch.tensor([[s[k] for k in names] for s in scores]).view(-1, group_size, len(names))
    correct = torch.tensor([s["correct"] for s in scores]).view(-1, group_size)
    metrics.update(spread_diagnostics(components, correct, names))
    return metrics
