"""The policy stage: RLVR (GRPO family) and, with `inject_label`, ViSurf and its neighbours.

Collect: sample G completions per prompt, score them, (ViSurf) render and score the label and
let it enter the groups the `injection` flags say, the way they say (docs/injection.md), under
the reward-control strategies (docs/reward_control.md), form group advantages with the
objective's advantage estimator. Loss: the clipped surrogate on rollouts, the label's own term
on labels, plus β·KL to the reference, normalised by counts over all processes. With
`inject_label=False` no label row exists and the loss is exactly the RLVR loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from visurf.algorithms import (
    ADVANTAGE_ESTIMATORS,
    Injection,
    PolicyLossOptions,
    entering_groups,
    group_members,
    injected_advantages,
    label_rewards,
    policy_loss,
)
from visurf.data.groups import GROUPS
from visurf.models.processing import images_of
from visurf.objectives.answer_reading import AnswerReading, read_answers
from visurf.objectives.diagnostics import sampled_entropy, spread_diagnostics
from visurf.objectives.experience import Experience
from visurf.objectives.registry import register_stage
from visurf.reward_control import RewardControl
from visurf.rewards.parsing import parse_completion
from visurf.rollout import Sequences, concat, pad_completions, sample, select_prompts, token_logps
from visurf.training.distributed import generation_context


@dataclass
class Labels:
    """The labels of the groups they enter, as `_labels` renders and scores them."""

    seqs: Sequences  # one row per entered group
    scored: torch.Tensor  # [L] each label's total reward, as scored (after the strategies' score hook)
    think_spans: list  # per label: the (start, end) tokens of its think segment, or None
    metrics: dict[str, float]
    samples: list[dict]  # per label: its record for the completions table (no advantage yet)


@dataclass
class Batch:
    """Rollouts and the labels that entered their groups, as the loss takes them."""

    seqs: Sequences
    loss_mask: torch.Tensor  # [N, C]
    advantages: torch.Tensor  # [N]
    is_label: torch.Tensor  # [N] bool
    samples: list[dict]  # [N] each row's record for the completions table (no advantage yet)


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
        self.estimator = ADVANTAGE_ESTIMATORS.get(str(objective_cfg.get("advantage_estimator", "grpo")))
        self.loss_options = PolicyLossOptions(
            beta=float(objective_cfg.beta),
            eps_low=float(objective_cfg.epsilon_low),
            eps_high=float(objective_cfg.epsilon_high),
            aggregation=str(objective_cfg.loss_aggregation),
            max_completion_length=int(rollout_cfg.max_new_tokens),
            kl_on_label=bool(objective_cfg.kl_on_label),
            label_ratio=self.injection.label_ratio,
            label_gamma=float(self.injection.label_gamma),
        )

    @classmethod
    def from_config(cls, spec, cfg) -> PolicyStage:
        control = RewardControl.from_config(cfg.reward_control)
        injection = Injection.from_config(cfg.get("injection"))
        return cls(cfg.objective, cfg.rollout, control, bool(spec.get("inject_label", False)), injection)

    @staticmethod
    def title(spec) -> str:
        return "ViSurf" if spec.get("inject_label", False) else "RLVR"

    def on_start(self, host) -> None:
        # The reference is the policy as this stage starts (after an SFT stage: the SFT result).
        if self.cfg.beta > 0:
            host.reset_reference()

    @torch.no_grad()
    def experience(self, host, examples: list) -> Experience:
        """The steps of a rollout, in order: prompts -> G samples each -> rewards -> (the label
        enters its groups) -> advantages -> the log-probabilities the loss needs besides ℓ_θ."""
        proc, device = host.processor, host.device
        g, b = int(self.rollout.num_generations), len(examples)
        inputs = host.to_device(proc([e.prompt for e in examples], [images_of(e) for e in examples]))
        seqs = self._sample(host, inputs)
        texts = [proc.decode(ids[m > 0]) for ids, m in zip(seqs.ids, seqs.mask)]
        scores = [
            host.reward_fn(t, examples[i // g].solution, examples[i // g].width, examples[i // g].height)
            for i, t in enumerate(texts)
        ]
        totals = torch.tensor([s["total"] for s in scores], dtype=torch.float32).view(b, g)
        correct = torch.tensor([bool(s["correct"]) for s in scores]).view(b, g)
        reading = read_answers(host.reward_fn, texts, scores)
        metrics = rollout_metrics(texts, scores, seqs, g, reading)
        metrics.update(by_group(examples, correct, reading))

        loss_mask = seqs.mask.clone()
        if self.cfg.mask_truncated:
            loss_mask[seqs.truncated] = 0
        samples = [sample_record(i // g, t, s, False) for i, (t, s) in enumerate(zip(texts, scores))]
        if self.inject_label:
            batch = self._inject(
                host, examples, inputs, texts, totals, correct.float(), seqs, loss_mask, metrics, samples
            )
        else:
            advantages = self.estimator(totals, self.cfg.scale_rewards, 1e-4).reshape(-1)
            batch = Batch(seqs, loss_mask, advantages, torch.zeros(b * g, dtype=torch.bool), samples)
        metrics["advantage_abs"] = batch.advantages.abs().mean().item()

        exp = Experience(
            batch.seqs,
            batch.loss_mask.to(device),
            batch.advantages.to(device),
            batch.is_label.to(device),
            metrics=metrics,
            rollout_correct=correct,
            samples=[dict(r, advantage=a) for r, a in zip(batch.samples, batch.advantages.tolist())],
        )
        if self.passes > 1:  # ℓ_old is needed apart from ℓ_θ only when a batch is reused
            exp.old_logp = self.scores(host, batch.seqs)
        if self.cfg.beta > 0:
            exp.ref_logp = host.reference_logps(batch.seqs, float(self.rollout.temperature))
        return exp

    def _sample(self, host, inputs: dict) -> Sequences:
        proc = host.processor
        with generation_context(host) as generate_kwargs:  # FSDP: gathered root, synced ranks
            return sample(
                host.policy,
                inputs,
                int(self.rollout.num_generations),
                max_new_tokens=int(self.rollout.max_new_tokens),
                temperature=float(self.rollout.temperature),
                top_p=float(self.rollout.top_p),
                eos_id=proc.eos_token_id,
                pad_id=proc.pad_token_id,
                suppress_ids=proc.vision_token_ids,
                **generate_kwargs,
            )

    def _inject(
        self, host, examples, inputs, texts, totals, correct, seqs, loss_mask, metrics, samples
    ) -> Batch:
        """The label enters its groups (`injection`): the rows, loss mask, advantages and label flags.

        Rollout rows a label replaces leave the batch; labels exist only for the groups they enter.
        """
        inj, (b, g) = self.injection, totals.shape
        enters = entering_groups(correct, inj.when)
        members = group_members(enters, g, inj.how)
        groups = enters.nonzero().squeeze(-1).tolist()
        scored = torch.zeros(b, dtype=torch.float32)  # under bf16-true the default dtype is bf16
        labels = self._labels(host, examples, inputs, texts, totals, groups, members) if groups else None
        if labels is not None:
            scored[groups] = labels.scored
            metrics.update(labels.metrics)
        else:
            metrics.update({"label/reward": 0.0, "label/accuracy": 0.0})
        metrics["label/entered"] = enters.float().mean().item()

        rollout_adv, label_adv = self._label_advantages(host, totals, scored, enters, members, metrics)
        metrics.update(label_by_group(examples, enters, label_adv))
        kept = members.reshape(-1)
        advantages = rollout_adv.reshape(-1)[kept]
        samples = [r for r, k in zip(samples, kept.tolist()) if k]
        if not kept.all():
            rows = kept.nonzero().squeeze(-1).to(seqs.ids.device)
            seqs = Sequences(
                select_prompts(seqs.prompt, rows), seqs.ids[rows], seqs.mask[rows], seqs.truncated[rows]
            )
            loss_mask = loss_mask[rows]
        is_label = torch.zeros(advantages.shape[0], dtype=torch.bool)
        if labels is None:
            metrics.update(label_tokens_by_group([], torch.zeros(0, 1)))
            return Batch(seqs, loss_mask, advantages, is_label, samples)
        label_mask = self.control.label_mask(labels.seqs.mask.clone(), labels.think_spans)
        metrics.update(label_tokens_by_group([examples[i] for i in groups], label_mask))
        seqs = concat(seqs, labels.seqs, host.processor.pad_token_id)
        width = seqs.ids.shape[1]
        return Batch(
            seqs,
            torch.cat([_widen(loss_mask, width), _widen(label_mask, width)]),
            torch.cat([advantages, label_adv[enters]]),
            torch.cat([is_label, torch.ones(len(groups), dtype=torch.bool)]),
            samples + labels.samples,
        )

    def _label_advantages(self, host, totals, scored, enters, members, metrics):
        """(rollout advantages [B, G], label advantages [B]) with the label's reward as the
        injection flags and reward control make it; the label metrics logged on the way."""
        inj = self.injection
        maximum = getattr(host.reward_fn, "max_total", None) if inj.label_reward == "maximum" else None
        if inj.label_reward == "maximum" and maximum is None:
            raise ValueError(
                f"injection.label_reward=maximum needs a reward with a max_total; "
                f"{type(host.reward_fn).__name__} has none"
            )
        given = label_rewards(scored, inj.label_reward, maximum)
        smoothed = inj.label_reward == "smoothed"
        used = self.control.label_reward(totals, given, members) if smoothed else given

        def advantages(label_reward):
            return injected_advantages(
                totals, label_reward, enters, inj.how, self.cfg.scale_rewards, estimator=self.estimator
            )

        rollout_adv, label_adv = advantages(used)
        # Before control: the advantage the label would have with the reward it was given.
        raw = label_adv if used is given else advantages(given)[1]
        if smoothed:
            label_adv = self.control.label_advantage(label_adv)
        # Label metrics are means over the groups the label entered (0 if none).
        entered = enters.float().sum().clamp(min=1).item()
        metrics["label/reward_used"] = (used * enters).sum().item() / entered
        metrics["label/advantage_raw"] = (raw * enters).sum().item() / entered
        metrics["label/advantage"] = (label_adv * enters).sum().item() / entered
        return rollout_adv, label_adv

    def _labels(self, host, examples, inputs, texts, totals, groups, members) -> Labels:
        """The label of each group in `groups`, rendered and scored under reward control.

        The strategies that render it take their think text from the rollouts that stay in the
        group (`members`).
        """
        proc, g = host.processor, int(self.rollout.num_generations)
        rows, spans, label_scores, samples = [], [], [], []
        for i in groups:
            ex = examples[i]
            kept = [j for j in range(g) if members[i, j]]
            label = self.control.render_label(
                ex, [texts[i * g + j] for j in kept], [float(totals[i, j]) for j in kept]
            )
            score = self.control.score_label(host.reward_fn(label.text, ex.solution, ex.width, ex.height))
            ids, starts = proc.completion_tokens(label.text)
            # The think segment's tokens are those holding any think text; a token that crosses
            # into the answer (`><`) holds both and counts as think: no_think supervises answer text only.
            num_think = sum(start < len(label.think_part) for start in starts)
            rows.append(ids)
            spans.append((0, num_think) if num_think else None)
            label_scores.append(score)
            samples.append(sample_record(i, label.text, score, True))
        ids, mask = pad_completions(rows, proc.pad_token_id, proc.eos_token_id)
        prompt = inputs  # one label per prompt: the prompt batch as it is
        if len(groups) < len(examples):
            prompt = select_prompts(inputs, torch.tensor(groups, device=inputs["input_ids"].device))
        seqs = Sequences(
            prompt,
            ids.to(host.device),
            mask.to(host.device),
            torch.zeros(len(groups), dtype=torch.bool, device=host.device),
        )
        totals_ = [s["total"] for s in label_scores]
        metrics = {
            "label/reward": sum(totals_) / len(totals_),
            "label/accuracy": sum(s["correct"] for s in label_scores) / len(label_scores),
        }
        return Labels(seqs, torch.tensor(totals_, dtype=torch.float32), spans, metrics, samples)

    def scores(self, host, seqs) -> torch.Tensor:
        """The policy's ℓ of `seqs` at the sampling temperature, as the rollouts were drawn (labels alike)."""
        return token_logps(
            host.policy, seqs, host.micro_batch_size, temperature=float(self.rollout.temperature)
        )

    def loss(self, host, exp: Experience) -> tuple[torch.Tensor, dict]:
        logp = self.scores(host, exp.seqs)
        old = exp.old_logp if exp.old_logp is not None else logp.detach()
        tokens, rows, world = global_counts(exp.loss_mask)
        loss, stats = policy_loss(
            logp,
            old,
            exp.ref_logp,
            exp.advantages,
            exp.loss_mask,
            exp.is_label,
            self.loss_options,
            global_tokens=tokens,
            global_rows=rows,
            world_size=world,
        )
        rollouts = ~exp.is_label
        stats["entropy"] = sampled_entropy(logp[rollouts], exp.seqs.mask[rollouts])
        return loss, stats


def sample_record(example: int, text: str, score: dict, is_label: bool) -> dict:
    """A row's record for the completions table: its prompt's index, text and reward components."""
    rewards = {k: float(v) for k, v in score.items() if k != "correct"}
    return {"example": example, "completion": text, "rewards": rewards, "is_label": is_label}


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


def _data_groups(examples: list) -> list[str]:
    """The data groups a step reports on: every one of the data's own groups (NaN where the batch
    has no prompt of it: a step logs the same keys every time), and any other group present."""
    return [*GROUPS, *sorted({e.group for e in examples} - set(GROUPS))]


def _rows(examples: list, group: str) -> torch.Tensor:
    """[len(examples)] bool: the examples of `group`."""
    return torch.tensor([e.group == group for e in examples], dtype=torch.bool)


def _mean(values: torch.Tensor) -> float:
    return values.float().mean().item() if values.numel() else math.nan


def by_group(examples: list, correct: torch.Tensor, reading: AnswerReading) -> dict[str, float]:
    """Per data group of the batch's prompts (`group/<name>/...`): rollout accuracy, the share of
    `[]` answers (grounding rewards only), and the share of prompts none of whose G rollouts is
    correct (where RLVR has nothing to learn from and only an injected label can teach).
    correct: [B, G]."""
    g = correct.shape[1]
    empty = reading.empty.view(-1, g) if reading.empty is not None else None
    out = {}
    for name in _data_groups(examples):
        rows = _rows(examples, name)
        out[f"group/{name}/accuracy"] = _mean(correct[rows])
        if empty is not None:
            out[f"group/{name}/empty_answer_rate"] = _mean(empty[rows])
        out[f"group/{name}/none_correct"] = _mean(~correct[rows].any(1))
    return out


def label_by_group(examples: list, enters: torch.Tensor, label_adv: torch.Tensor) -> dict[str, float]:
    """Per data group: the share of its prompts' groups the label entered, and the label's mean
    advantage there (NaN where it entered none): where the labels push, and how hard."""
    out = {}
    for name in _data_groups(examples):
        rows = _rows(examples, name)
        out[f"group/{name}/label_entered"] = _mean(enters[rows])
        out[f"group/{name}/label_advantage"] = _mean(label_adv[enters & rows])
    return out


def label_tokens_by_group(labelled: list, label_mask: torch.Tensor) -> dict[str, float]:
    """Per data group: the mean number of the label's tokens in the loss. Under
    `loss_aggregation=grpo` each row's loss is a mean over its own tokens, so a label with fewer
    tokens (a `[]` answer with its think text masked) gives each of them more weight."""
    tokens = label_mask.sum(-1)
    return {
        f"group/{name}/label_tokens": _mean(tokens[_rows(labelled, name)]) for name in _data_groups(labelled)
    }


def rollout_metrics(
    texts: list[str], scores: list[dict], seqs: Sequences, group_size: int, reading: AnswerReading
) -> dict[str, float]:
    """The step's means over its rollouts. `format_rate`: the share of answers the reward could
    read (`reading`); `empty_answer_rate`: the share of `[]` answers, where the reward grounds."""
    n = len(texts)
    metrics = {"reward": sum(s["total"] for s in scores) / n}
    for key in scores[0]:
        if key not in ("total", "correct"):
            metrics[f"reward/{key}"] = sum(s[key] for s in scores) / n
    parsed = [parse_completion(t) for t in texts]
    metrics["accuracy"] = sum(s["correct"] for s in scores) / n
    metrics["format_rate"] = int(reading.readable.sum()) / n
    metrics["strict_format_rate"] = sum(p.strict_format for p in parsed) / n
    if reading.empty is not None:
        # `[]` ("nothing there") is the answer RL most easily drifts onto or off (experiments/log/2026-12-03.md).
        metrics["empty_answer_rate"] = int(reading.empty.sum()) / n
    metrics["completion_length"] = seqs.mask.sum(-1).float().mean().item()
    metrics["truncated_rate"] = seqs.truncated.float().mean().item()
    names = [k for k in scores[0] if k not in ("total", "correct")]
    components = torch.tensor([[s[k] for k in names] for s in scores]).view(-1, group_size, len(names))
    correct = torch.tensor([s["correct"] for s in scores]).view(-1, group_size)
    metrics.update(spread_diagnostics(components, correct, names))
    return metrics
