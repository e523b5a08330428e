"""`no_think`: the label carries no real reasoning, so it is not judged or trained on it.

Its think-format check counts as satisfied (so a correct label is not ranked below correct
rollouts for lacking a think block), and its think-segment tokens are masked out of the loss
(`visurf.algorithms.reward_control.mask_think_tokens`): the label supervises the answer only.
"""

from __future__ import annotations


def exempt_think_reward(components: dict[str, float], component: str = "think_format") -> dict[str, float]:
    """The label's reward with its think-format term set to satisfied (1)."""
    if component not in components:
        return dict(components)
    out = dict(components)
    out["total"] = out["total"] - out[component] + 1.0
    out[component] = 1.0
    return out
