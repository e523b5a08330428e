"""Per-token policy losses for SFT, RLVR (GRPO family) and ViSurf (docs/method.md).

All per-token tensors are ``[B, T]`` (B sequences, T completion positions); ``mask`` ``[B, T]``
(bool or 0/1 float) marks the active completion tokens. Padding positions never contribute to a
loss value or a statistic, and get zero gradient (as long as their values are finite).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

AGGREGATIONS = ("grpo", "bnpo", "dapo", "dr_grpo")
LABEL_RATIOS = ("on_policy", "shaped", "clipped")


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimator of ``KL(π_θ || π_ref)``.

    ``KL = exp(ℓ_ref − ℓ_θ) − (ℓ_ref − ℓ_θ) − 1`` (≥ 0, exactly 0 where ``ℓ_θ == ℓ_ref``).
    Written as ``expm1(d) − d`` for accuracy when ``d`` is small.
    """
    d = ref_logp - logp
    return torch.expm1(d) - d


def _per_row(advantages: Tensor) -> Tensor:
    """``[B]`` advantages as a ``[B, 1]`` column that broadcasts over tokens."""
    return advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, eps_low: float, eps_high: float
) -> tuple[Tensor, Tensor]:
    """PPO/GRPO clipped surrogate, per token.

    ``ρ = exp(ℓ_θ − ℓ_old)``, ``loss = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A)``.

    Returns ``(per_token_loss, clipped_mask)``; ``clipped_mask`` is True where the clipped
    branch is the minimum (so the token gets no gradient): ``A > 0`` and ``ρ > 1+ε_high``, or
    ``A < 0`` and ``ρ < 1−ε_low``.
    """
    adv = _per_row(advantages)
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    clipped_mask = ((adv > 0) & (ratio > 1.0 + eps_high)) | ((adv < 0) & (ratio < 1.0 - eps_low))
    return per_token, clipped_mask


def on_policy_surrogate(logp: Tensor, advantages: Tensor) -> Tensor:
    """ViSurf label term, per token: ``−exp(ℓ_θ − stopgrad(ℓ_θ)) · A``.

    The ratio is 1 in value, so the loss is ``−A`` and its gradient ``−A·∇ℓ_θ``: an SFT
    gradient weighted by the label's advantage. Not clipped (the label is not a sample of
    ``π_old``, so a trust region around ``π_old`` means nothing for it).
    """
    return -torch.exp(logp - logp.detach()) * _per_row(advantages)


def shaped_surrogate(logp: Tensor, advantages: Tensor, gamma: float) -> Tensor:
    """LUFFY's policy shaping of an off-policy label, per token: ``−f(p) · A``, ``f(p) = p / (p + γ)``.

    ``p = exp(ℓ_θ)`` is the token's probability under the policy (the label's behaviour
    probability is taken as 1). Its gradient ``−A · γp / (p + γ)² · ∇ℓ_θ`` is largest for
    tokens of moderate probability and small for both confident and very unlikely ones, so
    rare label tokens do not dominate the update. Not clipped. ``γ > 0`` is checked once, where
    the flag is read (``visurf.algorithms.injection.Injection``).
    """
    p = torch.exp(logp)
    return -(p / (p + gamma)) * _per_row(advantages)


def _masked(per_token_loss: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(loss · mask with padding forced to 0, float mask)``.

    ``where`` rather than a bare product so NaN/inf at padding positions cannot reach the loss value.
    """
    m = mask.to(per_token_loss.dtype)
    masked = torch.where(m != 0, per_token_loss * m, torch.zeros_like(per_token_loss))
    return masked, m


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, with ``den == 0`` treated as 1 (the numerator is then 0 too)."""
    return num / torch.where(den != 0, den, torch.ones_like(den))


def aggregate(
    per_token_loss: Tensor,
    mask: Tensor,
    mode: str,
    max_completion_length: int | None = None,
    *,
    global_tokens: float | Tensor | None = None,
    global_rows: float | Tensor | None = None,
    world_size: int = 1,
) -> Tensor:
    """Reduce a ``[B, T]`` per-token loss to a scalar.

    - ``grpo``: ``Σ_i ( Σ_t m_it·l_it / Σ_t m_it ) / N_rows`` — mean over each sequence's
      active tokens, then over all rows, fully masked ones included (they add 0), as TRL's
      GRPOTrainer does: a batch with many masked (truncated) rows takes a smaller step, not one
      scaled up by ``B / B_kept``;
    - ``bnpo`` / ``dapo``: ``Σ_it m_it·l_it / N_tokens`` — mean over all active tokens of the
      whole batch across processes (the DAPO definition; identical to each other here; TRL's
      ``bnpo`` keeps each process's own count, only its ``dapo`` is global);
    - ``dr_grpo``: ``Σ_it m_it·l_it / (N_rows · L)``, ``L = max_completion_length`` (default ``T``).

    ``N_tokens`` and ``N_rows`` are the counts over every process's batch: ``global_tokens``
    (``Σ m`` all-reduced) and ``global_rows`` (rows all-reduced), each defaulting to this batch's
    own count. Data-parallel training averages the processes' gradients, so each process's
    denominator is the global count divided by ``world_size``: the average of the processes'
    gradients is then the gradient of one process holding the whole batch, however the tokens
    and rows are spread over them. With one process (``world_size = 1``, counts left None)
    nothing changes. A global count must be given when ``world_size > 1``.

    An empty mask gives 0, still connected to the graph (its gradient is 0, never NaN).
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    masked, m = _masked(per_token_loss, mask)
    if mode in ("bnpo", "dapo"):
        tokens = _count(global_tokens, m.sum(), world_size, "global_tokens", per_token_loss)
        return _safe_div(masked.sum(), tokens / world_size)
    rows = _count(global_rows, per_token_loss.shape[0], world_size, "global_rows", per_token_loss)
    rows = rows / world_size
    if mode == "grpo":
        per_seq = _safe_div(masked.sum(-1), m.sum(-1))
        return _safe_div(per_seq.sum(), rows)
    length = per_token_loss.shape[-1] if max_completion_length is None else max_completion_length
    if length <= 0:
        raise ValueError(f"max_completion_length must be positive, got {max_completion_length}")
    return _safe_div(masked.sum(), rows * length)


def _count(given, local, world_size: int, name: str, like: Tensor) -> Tensor:
    """A global count as a scalar tensor: ``given``, else this batch's own (one process only)."""
    if given is None:
        if world_size != 1:
            raise ValueError(f"{name} (the count over all processes) is needed when world_size > 1")
        given = local
    return torch.as_tensor(given, dtype=like.dtype, device=like.device)


def sft_loss(logp: Tensor, mask: Tensor) -> Tensor:
    """``L_SFT = − mean over label tokens of ℓ_θ`` (one token-mean over the whole batch).

    0 (with graph) when the mask is empty.
    """
    return aggregate(-logp, mask, "bnpo")


@dataclass(frozen=True)
class PolicyLossOptions:
    """The settings of :func:`policy_loss`, built once per stage from the objective's config.

    ``beta``: weight of the k3 KL to the reference; ``eps_low`` / ``eps_high``: the clip range;
    ``aggregation``: one of ``AGGREGATIONS`` (:func:`aggregate`), with ``max_completion_length``
    for ``dr_grpo``; ``kl_on_label``: the KL term on label rows too; ``label_ratio``: one of
    ``LABEL_RATIOS``, the label rows' surrogate, with ``label_gamma`` for ``shaped``.
    """

    beta: float = 0.0
    eps_low: float = 0.2
    eps_high: float = 0.2
    aggregation: str = "grpo"
    max_completion_length: int | None = None
    kl_on_label: bool = False
    label_ratio: str = "on_policy"
    label_gamma: float = 0.1

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.label_ratio not in LABEL_RATIOS:
            raise ValueError(f"label_ratio must be one of {LABEL_RATIOS}, got {self.label_ratio!r}")


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    is_label: Tensor,
    options: PolicyLossOptions,
    *,
    global_tokens: float | Tensor | None = None,
    global_rows: float | Tensor | None = None,
    world_size: int = 1,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One loss for a batch of rollouts and (ViSurf) injected labels.

    Per token: ``l = surrogate + β·KL_k3`` where the surrogate is :func:`clipped_surrogate` on
    rollout rows and, on rows with ``is_label``, chosen by ``options.label_ratio``:

    - ``on_policy`` (ViSurf): :func:`on_policy_surrogate`, ratio ``exp(ℓ − sg ℓ)``, unclipped;
    - ``shaped`` (LUFFY): :func:`shaped_surrogate` with ``γ = label_gamma``, unclipped;
    - ``clipped``: :func:`clipped_surrogate` against ``old_logp`` like a rollout (with one pass
      per batch ``old_logp`` is ``ℓ_θ`` detached and this equals ``on_policy`` exactly).

    The KL term is applied on rollout rows, and on label rows only when
    ``kl_on_label``; ``ref_logp is None`` or ``β == 0`` removes it. The per-token total is
    aggregated with ``options.aggregation`` over the whole batch (rollouts and labels together),
    with the global counts of :func:`aggregate` (``global_tokens``, ``global_rows``,
    ``world_size``). With ``is_label`` all False this is exactly the GRPO/RLVR loss.

    ``old_logp`` and ``ref_logp`` are ignored on the rows that do not use them (label rows
    for ``old_logp`` unless ``label_ratio == "clipped"``; rows without KL for ``ref_logp``), so
    any placeholder values there are safe.

    Returns ``(loss, stats)``; ``stats`` are detached scalars:

    - ``kl``: mean k3 KL over active rollout tokens (reported whenever ``ref_logp`` is given,
      also with ``β == 0``; 0 without ``ref_logp``);
    - ``clip_fraction``: fraction of active rollout tokens where the clipped branch was taken;
    - ``label_loss_share``: ``|L_label| / (|L_label| + |L_rollout|)`` where each part is the
      aggregated loss with the other part's per-token loss zeroed (0 without label rows);
    - ``policy_loss``: the aggregated surrogate part; ``kl_loss``: the aggregated ``β·KL`` part.
    """
    # Over 60 lines only for the docstring above: the code is surrogate, KL, aggregate, statistics.
    _check_shapes(logp, old_logp, ref_logp, advantages, mask, is_label)
    label_rows = is_label.to(torch.bool).unsqueeze(-1)
    surrogate, clipped_mask = _surrogate(logp, old_logp, advantages, label_rows, options)
    kl_tok, kl_term = _kl(logp, ref_logp, label_rows, options)

    def agg(per_token: Tensor) -> Tensor:
        return aggregate(
            per_token,
            mask,
            options.aggregation,
            options.max_completion_length,
            global_tokens=global_tokens,
            global_rows=global_rows,
            world_size=world_size,
        )

    total = surrogate + kl_term
    loss = agg(total)
    with torch.no_grad():
        rollout_active = mask.to(torch.bool) & ~label_rows
        n_rollout = rollout_active.sum().to(logp.dtype)
        zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
        label_part = agg(torch.where(label_rows, total, zero))
        rollout_part = agg(torch.where(label_rows, zero, total))
        stats = {
            "kl": _safe_div(torch.where(rollout_active, kl_tok, zero).sum(), n_rollout),
            "clip_fraction": _safe_div((clipped_mask & rollout_active).sum().to(logp.dtype), n_rollout),
            "label_loss_share": _safe_div(label_part.abs(), label_part.abs() + rollout_part.abs()),
            "policy_loss": agg(surrogate),
            "kl_loss": agg(kl_term),
        }
    return loss, {k: v.detach() for k, v in stats.items()}


def _check_shapes(logp, old_logp, ref_logp, advantages, mask, is_label) -> None:
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            "logp, old_logp and mask must share one [B, T] shape, got "
            f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if ref_logp is not None and ref_logp.shape != logp.shape:
        raise ValueError(f"ref_logp must have shape {tuple(logp.shape)}, got {tuple(ref_logp.shape)}")
    batch = logp.shape[0]
    if advantages.shape != (batch,) or is_label.shape != (batch,):
        raise ValueError(
            f"advantages and is_label must have shape ({batch},), got "
            f"{tuple(advantages.shape)} and {tuple(is_label.shape)}"
        )


def _surrogate(logp, old_logp, advantages, label_rows, options) -> tuple[Tensor, Tensor]:
    """The per-token surrogate of every row ([B, T]) and where a rollout token took the clipped
    branch; label rows take `options.label_ratio`'s term."""
    if options.label_ratio == "clipped":
        return clipped_surrogate(logp, old_logp, advantages, options.eps_low, options.eps_high)
    # Label rows take their own term; give the clipped branch ℓ_old = ℓ_θ there so a placeholder
    # old_logp on label rows cannot put NaN into the (discarded) branch's gradient.
    old_eff = torch.where(label_rows, logp.detach(), old_logp)
    clipped_loss, clipped_mask = clipped_surrogate(
        logp, old_eff, advantages, options.eps_low, options.eps_high
    )
    if options.label_ratio == "on_policy":
        label_loss = on_policy_surrogate(logp, advantages)
    else:
        label_loss = shaped_surrogate(logp, advantages, options.label_gamma)
    return torch.where(label_rows, label_loss, clipped_loss), clipped_mask


def _kl(logp, ref_logp, label_rows, options) -> tuple[Tensor, Tensor]:
    """(per-token k3 KL, its weighted loss term), both [B, T]; rows without KL hold exactly 0."""
    if ref_logp is None:
        zeros = torch.zeros_like(logp)
        return zeros, zeros
    kl_rows = torch.ones_like(label_rows) if options.kl_on_label else ~label_rows
    # Rows without KL compare ℓ_θ with itself, so their KL is exactly 0.
    kl_tok = kl_k3(logp, torch.where(kl_rows, ref_logp, logp.detach()))
    return kl_tok, (options.beta * kl_tok if options.beta != 0 else torch.zeros_like(logp))
