"""Group-relative advantages (GRPO / ViSurf), docs/method.md.

A ViSurf group is ``{o_1..o_G, ŷ}``: the label is just one more member (by convention the last
column), so the same function serves RLVR groups of size ``G`` and ViSurf groups of size ``G+1``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from visurf.config.registry import Registry

SCALE_REWARDS = ("group", "batch", "none")
# Estimators by name: (rewards [num_groups, group_size], scale_rewards, eps) -> advantages of the
# same shape. A policy stage forms every group's advantages with the one its objective names.
ADVANTAGE_ESTIMATORS = Registry("advantage estimator")
register_advantage_estimator = ADVANTAGE_ESTIMATORS.register


def _sample_std(x: Tensor, dim: int | None = None) -> Tensor:
    """Unbiased (``n - 1``) standard deviation, as ``torch.std`` and TRL use; 0 when ``n < 2``.

    ``torch.std`` of a single element is NaN; a lone sample has no spread, and 0 keeps its
    (already zero) centred reward at 0. With ``dim`` the reduced dimension is kept.
    """
    if dim is None:
        return x.std() if x.numel() > 1 else x.new_zeros(())
    if x.shape[dim] > 1:
        return x.std(dim=dim, keepdim=True)
    return torch.zeros_like(x.sum(dim=dim, keepdim=True))


@register_advantage_estimator("grpo")
def group_advantages(rewards: Tensor, scale_rewards: str = "group", eps: float = 1e-4) -> Tensor:
    """Group-relative advantages of a ``[num_groups, group_size]`` reward tensor.

    ``A_i = r_i - mean_group(r)``, then scaled according to ``scale_rewards``:

    - ``"group"``: ``A_i / (std_group(r) + eps)``
    - ``"batch"``: ``A_i / (std_batch(r) + eps)`` (std over every reward of the batch; the mean
      stays per group, as in TRL)
    - ``"none"``: ``A_i`` unscaled (Dr. GRPO)

    ``std`` is the unbiased sample std (``n - 1``), matching ``torch.std`` and TRL; a group (or
    batch) of one member has std 0. A group whose members all have the same reward gets
    advantages of exactly 0 (forced, so float rounding in the mean cannot leak a tiny
    ``±1e-8 / eps`` signal), never NaN.

    For ViSurf the label is the last column of a ``G+1``-wide group; nothing else differs.

    Returns a float tensor of the same shape (dtype of ``rewards`` if floating, else float32).
    """
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {scale_rewards!r}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape [num_groups, group_size], got {tuple(rewards.shape)}")
    if not rewards.is_floating_point():
        rewards = rewards.float()
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards contain NaN or inf; refusing to compute advantages")

    centred = rewards - rewards.mean(dim=1, keepdim=True)
    # Exact zeros for all-equal groups: the float mean of equal values can be off by one ulp.
    all_equal = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)
    centred = torch.where(all_equal, torch.zeros_like(centred), centred)

    if scale_rewards == "group":
        return centred / (_sample_std(rewards, dim=1) + eps)
    if scale_rewards == "batch":
        return centred / (_sample_std(rewards) + eps)
    return centred
