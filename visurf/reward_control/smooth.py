"""`smooth`: clamp the label's advantage to [0, c].

When every rollout fails, group normalisation gives the label an advantage of about √G and the
update becomes an SFT step that swamps the group; when rollouts already succeed, the label can
get a negative advantage that pushes down correct answer tokens.
"""

from visurf.algorithms.reward_control import clamp_label_advantage


def smooth_label_advantage(advantages, clamp: float):
    """`advantages` is [num_groups, G+1] with the label last."""
    return clamp_label_advantage(advantages, clamp)
