"""Per-step signals that say whether a policy step can learn anything, and from what.

GRPO learns only from the spread of rewards inside a group. These numbers say how much spread
there is and where it comes from, so a run that drifts can be read from its own metrics:

- `groups/zero_spread`: share of groups whose members all scored the same (advantage 0: no signal);
- `groups/all_correct`, `groups/none_correct`: share of groups where every / no rollout is correct;
- `reward_std/<component>`: mean over groups of the within-group std of each reward component;
- `spread_share/<component>`: the share of the within-group reward variance that each component
  carries, `Σ_groups cov(component, total) / Σ_groups var(total)`. The shares of the components
  sum to 1 (covariance is linear in its first argument); a share near 0 for `accuracy` means the
  advantages mostly rank rollouts by format, not by whether they found the object.
"""

from __future__ import annotations

from torch import Tensor


def spread_diagnostics(components: Tensor, correct: Tensor, names: list[str]) -> dict[str, float]:
    """components: [B, G, K] reward components per rollout (their sum is the total reward);
    correct: [B, G] in {0, 1}; names: the K component names. Returns the metrics above."""
    if components.dim() != 3 or components.shape[-1] != len(names):
        raise ValueError(f"components must be [B, G, {len(names)}], got {tuple(components.shape)}")
    components = components.double()
    total = components.sum(-1)  # [B, G]
    out = {
        "groups/zero_spread": (total == total[:, :1]).all(dim=1).double().mean().item(),
        "groups/all_correct": (correct > 0).all(dim=1).double().mean().item(),
        "groups/none_correct": (correct <= 0).all(dim=1).double().mean().item(),
    }
    centred = components - components.mean(dim=1, keepdim=True)  # [B, G, K]
    total_centred = total - total.mean(dim=1, keepdim=True)  # [B, G]
    g = components.shape[1]
    std = centred.pow(2).sum(dim=1).div(max(g - 1, 1)).sqrt().mean(dim=0)  # [K], sample std as advantages use
    variance = total_centred.pow(2).sum()
    covariance = (centred * total_centred[..., None]).sum(dim=(0, 1))  # [K]
    for k, name in enumerate(names):
        out[f"reward_std/{name}"] = std[k].item()
        out[f"spread_share/{name}"] = (covariance[k] / variance).item() if variance > 0 else 0.0
    return out


def sampled_entropy(logp: Tensor, mask: Tensor) -> float:
    """Mean over completion tokens of -log π_T(token): with the tokens sampled from π_T (a policy
    stage scores at its sampling temperature), an unbiased estimate of the sampler's per-token
    entropy (E[-log p(x)] = H when x ~ p). logp, mask: [N, C]."""
    active = mask.sum()
    return float((-(logp.detach().float() * mask).sum() / active.clamp(min=1)).item())
