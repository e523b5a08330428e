"""paired_change: gains, losses and McNemar's exact p-value, against hand-computed values."""

import itertools
import math

import pytest

from visurf.evaluation.paired import mcnemar_p, mcnemar_power, paired_change, summed_change


def outcomes(rows):
    return [(f"q{i}", group, float(correct)) for i, (group, correct) in enumerate(rows)]


def test_counts_gains_losses_and_unchanged_per_group():
    before = outcomes([("known", 0), ("known", 1), ("known", 1), ("novel", 0), ("novel", 0), ("multi", 1)])
    after = outcomes([("known", 1), ("known", 0), ("known", 1), ("novel", 1), ("novel", 0), ("multi", 1)])
    change = paired_change(before, after)
    assert (change["gained"], change["lost"], change["unchanged"]) == (2, 1, 3)
    assert change["groups"] == {
        "known": {"gained": 1, "lost": 1, "unchanged": 1},
        "multi": {"gained": 0, "lost": 0, "unchanged": 1},
        "novel": {"gained": 1, "lost": 0, "unchanged": 1},
    }
    # Two-sided exact binomial, 2 gains of 3 changes: P(X <= 1) + P(X >= 2) = 1 by symmetry.
    assert change["p_value"] == pytest.approx(1.0)


def test_p_value_of_one_sided_changes_is_the_exact_binomial_tail():
    before = outcomes([("known", 0)] * 10)
    after = outcomes([("known", 1)] * 10)  # 10 gains, no loss: 2 * 0.5**10
    assert paired_change(before, after)["p_value"] == pytest.approx(2 / 1024)
    # 9 gains, 1 loss: 2 * (1 + 10) / 1024
    after = outcomes([("known", 1)] * 9 + [("known", 0)])
    before = outcomes([("known", 0)] * 9 + [("known", 1)])
    assert paired_change(before, after)["p_value"] == pytest.approx(22 / 1024)


def test_the_order_of_examples_does_not_matter_and_nothing_changed_gives_p_one():
    before = outcomes([("known", 1), ("novel", 0), ("multi", 1)])
    change = paired_change(before, list(reversed(before)))
    assert (change["gained"], change["lost"], change["unchanged"], change["p_value"]) == (0, 0, 3, 1.0)


def test_different_examples_are_refused_with_the_keys_named():
    before = outcomes([("known", 1), ("known", 0)])
    with pytest.raises(ValueError, match=r"only before: \['q1'\]"):
        paired_change(before, before[:1])
    with pytest.raises(ValueError, match="key occurs twice"):
        paired_change(before + before[:1], before)


def test_summed_over_seeds_adds_the_counts_and_tests_the_sums():
    # Seed 0: 5 known gains, 0 losses; seed 1: 4 known gains and 1 novel loss. Neither alone is
    # significant (2/32 = 0.0625; 2 * 6/32 = 0.375); summed, 9 gains of 10 changes: 22/1024.
    seed0 = paired_change(outcomes([("known", 0)] * 5), outcomes([("known", 1)] * 5))
    seed1 = paired_change(
        outcomes([("known", 0)] * 4 + [("novel", 1), ("novel", 0)]),
        outcomes([("known", 1)] * 4 + [("novel", 0), ("novel", 0)]),
    )
    assert seed0["p_value"] == pytest.approx(2 / 32) and seed1["p_value"] == pytest.approx(12 / 32)
    summed = summed_change([seed0, seed1])
    assert (summed["gained"], summed["lost"], summed["unchanged"]) == (9, 1, 1)
    assert summed["groups"] == {
        "known": {"gained": 9, "lost": 0, "unchanged": 0},
        "novel": {"gained": 0, "lost": 1, "unchanged": 1},
    }
    assert summed["p_value"] == pytest.approx(22 / 1024)
    assert summed_change([seed0]) == seed0  # one comparison summed is itself
    with pytest.raises(ValueError, match="at least one"):
        summed_change([])


def test_power_is_the_probability_of_a_significant_gain_summed_over_every_outcome():
    # Brute force over all 3**8 ways 8 questions can go (gained, lost, unchanged).
    p_gained, p_lost, n, alpha = 0.5, 0.1, 8, 0.05
    by_hand = 0.0
    for outcome in itertools.product("glu", repeat=n):
        gained, lost = outcome.count("g"), outcome.count("l")
        if gained > lost and mcnemar_p(gained, lost) < alpha:
            by_hand += p_gained**gained * p_lost**lost * (1 - p_gained - p_lost) ** (n - gained - lost)
    assert mcnemar_power(p_gained, p_lost, n, alpha) == pytest.approx(by_hand, rel=1e-9)
    assert mcnemar_power(1.0, 0.0, 8) == pytest.approx(1.0)
    # Every question gained: certain. Coin flips: 7 gains and 1 loss give p = 2 * 9 / 256 = 0.07, so only 8 / 0 counts.
    assert mcnemar_power(0.5, 0.5, 8) == pytest.approx(1 / 256)


def test_power_grows_with_questions_and_stays_below_alpha_without_an_effect():
    assert mcnemar_power(0.12, 0.06, 1000) > mcnemar_power(0.12, 0.06, 500) > mcnemar_power(0.12, 0.06, 100)
    assert mcnemar_power(0.1, 0.1, 500) < 0.025  # a one-sided share of a two-sided 0.05
    assert mcnemar_power(0.0, 0.0, 500) == 0.0
    with pytest.raises(ValueError, match="p_gained=0.8, p_lost=0.5"):
        mcnemar_power(0.8, 0.5, 10)
    assert math.isfinite(mcnemar_power(0.3, 0.1, 50))


def test_seed_level_by_hand():
    from scipy.stats import t as student

    from visurf.evaluation.paired import seed_level

    changes = [
        {"gained": 30, "lost": 10, "unchanged": 460},  # +20 of 500: +0.04
        {"gained": 25, "lost": 20, "unchanged": 455},  # +5: +0.01
        {"gained": 20, "lost": 28, "unchanged": 452},  # -8: -0.016
    ]
    level = seed_level(changes)
    assert level["differences"] == pytest.approx([0.04, 0.01, -0.016])
    mean = (0.04 + 0.01 - 0.016) / 3
    sd = (sum((d - mean) ** 2 for d in (0.04, 0.01, -0.016)) / 2) ** 0.5
    assert level["mean"] == pytest.approx(mean) and level["sd"] == pytest.approx(sd)
    t_stat = mean / (sd / 3**0.5)
    assert level["t_p_value"] == pytest.approx(2 * student.sf(abs(t_stat), df=2))
    low, high = level["ci"]
    assert low < mean < high and low < 0  # three seeds that disagree: the interval holds 0


def test_seed_level_edge_cases():
    from visurf.evaluation.paired import seed_level

    one = seed_level([{"gained": 5, "lost": 1, "unchanged": 94}])
    assert one["t_p_value"] is None and one["sd"] == 0.0
    same = seed_level([{"gained": 5, "lost": 1, "unchanged": 94}] * 3)
    assert same["t_p_value"] is None and same["ci"][0] > 0  # every seed +4 points: no spread, no t-test
    nothing = seed_level([{"gained": 0, "lost": 0, "unchanged": 10}] * 2)
    assert nothing["t_p_value"] is None and nothing["ci"] == [0.0, 0.0]
    strong = seed_level(
        [{"gained": 60, "lost": 10, "unchanged": 430}, {"gained": 55, "lost": 12, "unchanged": 433}]
    )
    assert strong["ci"][0] > 0.05  # both seeds far ahead: the interval is well above 0
    assert seed_level(changes := [{"gained": 3, "lost": 1, "unchanged": 6}] * 2) == seed_level(
        changes
    )  # seeded
    with pytest.raises(ValueError, match="no questions"):
        seed_level([{"gained": 0, "lost": 0, "unchanged": 0}])
