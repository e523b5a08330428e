"""The policy stage: RLVR (GRPO family) and, with `inject_label`, ViSurf (DESIGN §2).

Collect: sample G completions per prompt, score them, (ViSurf) render and score the label as
group member G+1 under the reward-control flags, form group advantages. Loss: the clipped
surrogate on rollouts, the on-policy unclipped term on labels, plus β·KL to the reference.
With `inject_label=False` no label row exists and the loss is exactly the RLVR loss.
"""

from __future__ import annotations

import torch

from visurf.algorithms import group_advantages, mask_think_tokens, policy_loss
from visurf.objectives.diagnostics import sampled_entropy, spread_diagnostics
from visurf.objectives.experience import Experience
from visurf.reward_control import RewardControl, exempt_think_reward, render_label, smooth_label_advantage
from visurf.rewards.parsing import parse_completion
from visurf.rollout import Sequences, concat, pad_completions, sample, token_logps
from visurf.strategies import generation_context


class PolicyStage:
    kind = "policy"

    def __init__(self, objective_cfg, rollout_cfg, control: RewardControl, inject_label: bool):
        self.cfg = objective_cfg
        self.rollout = rollout_cfg
        self.control = control
        self.inject_label = inject_label
        self.passes = int(objective_cfg.mu)

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

        loss_mask = seqs.mask.clone()
        if self.cfg.mask_truncated:
            loss_mask[seqs.truncated] = 0
        is_label = torch.zeros(b * g, dtype=torch.bool, device=device)
        rewards = totals
        if self.inject_label:
            label_seqs, label_totals, spans, label_metrics = self._labels(
                module, examples, inputs, texts, totals
            )
            rewards = torch.cat([totals, label_totals[:, None]], dim=1)
            metrics.update(label_metrics)

        advantages = group_advantages(rewards, self.cfg.scale_rewards)
        if self.inject_label:
            metrics["label/advantage_raw"] = advantages[:, -1].mean().item()
            if self.control.smooth:
                advantages = smooth_label_advantage(advantages, self.control.smooth_clamp)
            metrics["label/advantage"] = advantages[:, -1].mean().item()
            label_mask = label_seqs.mask.clone()
            if self.control.no_think:
                label_mask = mask_think_tokens(label_mask, spans)
            seqs = concat(seqs, label_seqs, proc.pad_token_id)
            width = seqs.ids.shape[1]
            loss_mask = torch.cat([_widen(loss_mask, width), _widen(label_mask, width)])
            is_label = torch.cat([is_label, torch.ones(b, dtype=torch.bool, device=device)])
            flat_adv = torch.cat([advantages[:, :g].reshape(-1), advantages[:, g]])
        else:
            flat_adv = advantages.reshape(-1)
        metrics["advantage_abs"] = flat_adv.abs().mean().item()

        exp = Experience(
            seqs, loss_mask.to(device), flat_adv.to(device), is_label.to(device), metrics=metrics
        )
        if self.passes > 1:  # ℓ_old is needed apart from ℓ_θ only when a batch is reused
            exp.old_logp = token_logps(module.policy, seqs, module.micro_batch_size)
        if self.cfg.beta > 0:
            exp.ref_logp = module.reference_logps(seqs)
        return exp

    def _labels(self, module, examples, inputs, texts, totals):
        """The label of each prompt as group member G+1, its reward and its think-token span."""
        proc, g = module.processor, int(self.rollout.num_generations)
        rows, label_totals, spans, label_scores = [], [], [], []
        for i, ex in enumerate(examples):
            label = render_label(ex, texts[i * g : (i + 1) * g], totals[i].tolist(), self.control.align)
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
        label_seqs = Sequences(
            inputs,  # one label per prompt: the prompt batch as it is
            ids.to(module.device),
            mask.to(module.device),
            torch.zeros(len(examples), dtype=torch.bool, device=module.device),
        )
        metrics = {"label/reward": sum(label_totals) / len(label_totals)}
        metrics["label/accuracy"] = sum(s["correct"] for s in label_scores) / len(label_scores)
        return label_seqs, torch.tensor(label_totals, dtype=torch.float32), spans, metrics

    def loss(self, module, exp: Experience) -> tuple[torch.Tensor, dict]:
        logp = token_logps(module.policy, exp.seqs, module.micro_batch_size)
        old = exp.old_logp if exp.old_logp is not None else logp.detach()
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
        )
        rollouts = ~exp.is_label
        stats["entropy"] = sampled_entropy(logp[rollouts], exp.seqs.mask[rollouts])
        return loss, stats


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
    metrics["completion_length"] = seqs.mask.sum(-1).float().mean().item()
    metrics["truncated_rate"] = seqs.truncated.float().mean().item()
    names = [k for k in scores[0] if k not in ("total", "correct")]
    components = torch.tensor([[s[k] for k in names] for s in scores]).view(-1, group_size, len(names))
    correct = torch.tensor([s["correct"] for s in scores]).view(-1, group_size)
    metrics.update(spread_diagnostics(components, correct, names))
    return metrics
