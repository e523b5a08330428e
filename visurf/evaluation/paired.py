"""Which test questions a run changed: the paired comparison of two evaluations on the same examples,
summed over seeds (McNemar) or tested at the level of seeds (`seed_level`).

Accuracy before and after training is measured on the same questions, so a small difference in
accuracy is best read question by question: `gained` went from wrong to right, `lost` from right
to wrong. `p_value` is McNemar's exact test: the two-sided binomial probability of gains and
losses at least this unbalanced were each changed question equally likely to go either way.
A run that reshuffles near-tie answers shows many gains and many losses and a large p-value.
"""

from __future__ import annotations

from scipy.stats import binom, binomtest

# One evaluated example: (key, group, correct in {0, 1}); the key names the example (runs use
# its index in the test split, since a dataset's ids need not be unique).
Outcome = tuple[object, str, float]


def paired_change(before: list[Outcome], after: list[Outcome]) -> dict:
    """Gains and losses overall and per group, and McNemar's exact p-value; keys must match."""
    old = {key: (group, bool(correct)) for key, group, correct in before}
    new = {key: bool(correct) for key, _, correct in after}
    if len(old) != len(before) or len(new) != len(after):
        raise ValueError("paired_change: an example key occurs twice in one evaluation")
    if old.keys() != new.keys():
        missing, extra = sorted(old.keys() - new.keys()), sorted(new.keys() - old.keys())
        raise ValueError(
            "paired_change needs the same examples in both evaluations; "
            f"only before: {missing[:5]}, only after: {extra[:5]}"
        )
    groups: dict[str, dict[str, int]] = {}
    for key, (group, was_right) in old.items():
        counts = groups.setdefault(group, {"gained": 0, "lost": 0, "unchanged": 0})
        is_right = new[key]
        counts["unchanged" if was_right == is_right else "gained" if is_right else "lost"] += 1
    return _with_totals(groups)


def summed_change(changes: list[dict]) -> dict:
    """Several paired_change results (e.g. one per seed) summed: gains, losses and unchanged per
    group and overall, with McNemar's exact p-value of the sums. Each changed question is one
    independent coin under "no effect" whichever seed it comes from, so the sums test the same
    hypothesis with the power of every seed's questions together."""
    if not changes:
        raise ValueError("summed_change needs at least one comparison")
    groups: dict[str, dict[str, int]] = {}
    for change in changes:
        for group, counts in change["groups"].items():
            summed = groups.setdefault(group, {"gained": 0, "lost": 0, "unchanged": 0})
            for kind in summed:
                summed[kind] += counts[kind]
    return _with_totals(groups)


def seed_level(changes: list[dict], resamples: int = 10_000, rng_seed: int = 0) -> dict:
    """Several paired comparisons (one per seed) tested at the level of seeds: whether the method,
    not these particular trained models, moves accuracy.

    Each seed's difference is (gained - lost) / questions, its accuracy after minus before (in
    accuracy points of 1). Returns `seeds`, `differences`, their `mean` and sample `sd`,
    `t_p_value` (a one-sample t-test of the mean against 0 over seeds, df = seeds - 1; None for
    one seed or when every seed differs by the same amount, where with no spread the t statistic
    is undefined) and `ci` (a two-level bootstrap 95% interval of the mean: seeds resampled, then
    each resampled seed's questions, each gained, lost or unchanged in the proportions that seed
    showed).
    """
    import numpy as np
    from scipy.stats import ttest_1samp

    if not changes:
        raise ValueError("seed_level needs at least one comparison")
    counts = np.array([[c["gained"], c["lost"], c["unchanged"]] for c in changes], dtype=np.int64)
    questions = counts.sum(1)
    if (questions == 0).any():
        raise ValueError("seed_level: a comparison has no questions")
    diffs = (counts[:, 0] - counts[:, 1]) / questions
    n = len(diffs)
    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1)) if n > 1 else 0.0
    p_value = float(ttest_1samp(diffs, 0.0).pvalue) if n > 1 and sd > 0 else None
    rng = np.random.default_rng(rng_seed)
    picks = rng.integers(0, n, size=(resamples, n))  # seeds, with replacement
    draws = rng.multinomial(questions[picks], counts[picks] / questions[picks][..., None])  # [R, n, 3]
    means = ((draws[..., 0] - draws[..., 1]) / questions[picks]).mean(1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {
        "seeds": n,
        "differences": [float(d) for d in diffs],
        "mean": mean,
        "sd": sd,
        "t_p_value": p_value,
        "ci": [float(low), float(high)],
    }


def mcnemar_p(gained: int, lost: int) -> float:
    """McNemar's exact two-sided p-value of `gained` against `lost` changed questions."""
    changed = int(gained) + int(lost)
    return float(binomtest(int(gained), changed, 0.5).pvalue) if changed else 1.0


def mcnemar_power(p_gained: float, p_lost: float, num_questions: int, alpha: float = 0.05) -> float:
    """The probability that an evaluation of `num_questions` shows a significant gain: more
    gained than lost at McNemar p < `alpha`, when each question is independently gained with
    probability `p_gained` and lost with `p_lost` (e.g. the rates a validation run measured)."""
    if not (p_gained >= 0 and p_lost >= 0 and p_gained + p_lost <= 1):
        raise ValueError(f"mcnemar_power: p_gained={p_gained}, p_lost={p_lost} are not probabilities")
    changed = p_gained + p_lost
    if changed == 0:
        return 0.0
    power, need = 0.0, 1
    for num_changed in range(1, int(num_questions) + 1):
        # The fewest significant gains out of `num_changed`: McNemar's p of k > n/2 gains is
        # 2 P(X >= k), and it only grows with n, so the count needed never falls.
        need = max(need, num_changed // 2 + 1)
        while need <= num_changed and 2 * binom.sf(need - 1, num_changed, 0.5) >= alpha:
            need += 1
        if need <= num_changed:
            power += binom.pmf(num_changed, num_questions, changed) * binom.sf(
                need - 1, num_changed, p_gained / changed
            )
    return float(power)


def _with_totals(groups: dict[str, dict[str, int]]) -> dict:
    totals = {kind: sum(c[kind] for c in groups.values()) for kind in ("gained", "lost", "unchanged")}
    p_value = mcnemar_p(totals["gained"], totals["lost"])
    return {**totals, "p_value": p_value, "groups": dict(sorted(groups.items()))}
