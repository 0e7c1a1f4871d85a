"""Simulated pairs: a known true difference is detected at the rate the test's exact power
predicts, intervals cover the truth at about their level, and identical models give "no
detectable difference" at about 1 - alpha of seeds. Fixed seeds; counts kept modest.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evalkit.compare import B_BETTER, NO_DIFFERENCE, verdict
from evalkit.compare.modes import compare_accuracy, compare_preferences, compare_scores, compare_votes

ALPHA = 0.05
SEEDS = 300


def _within(observed: float, expected: float, seeds: int = SEEDS, sds: float = 4.0) -> bool:
    """Observed share of seeds is within ``sds`` binomial standard errors of the expectation."""
    return abs(observed - expected) <= sds * np.sqrt(expected * (1 - expected) / seeds) + 1e-9


def _two_sided_half(c: np.ndarray, d: int) -> np.ndarray:
    """Exact two-sided binomial p-value at p = 1/2 (symmetric: twice the smaller tail)."""
    return np.minimum(1.0, 2 * np.minimum(stats.binom.cdf(c, d, 0.5), stats.binom.sf(c - 1, d, 0.5)))


def _exact_mcnemar_rejection_rate(n: int, p_a_only: float, p_b_only: float, *, direction_b: bool) -> float:
    """P(exact McNemar p < alpha [and B ahead]) by summing over the discordant counts."""
    discordant = stats.binom(n, p_a_only + p_b_only)
    share_b = p_b_only / (p_a_only + p_b_only)
    total = 0.0
    for d in range(1, n + 1):
        c = np.arange(d + 1)
        rejects = _two_sided_half(c, d) < ALPHA
        if direction_b:
            rejects &= 2 * c > d
        total += discordant.pmf(d) * stats.binom.pmf(c[rejects], d, share_b).sum()
    return total


def _paired_correct(rng: np.random.Generator, n: int, p_a_only: float, p_b_only: float) -> tuple[np.ndarray, np.ndarray]:
    # each question: only A right, only B right, both (0.4) or neither
    outcome = rng.choice(4, size=n, p=[p_a_only, p_b_only, 0.4, 0.6 - p_a_only - p_b_only])
    return np.isin(outcome, (0, 2)), np.isin(outcome, (1, 2))


def test_mmlu_true_difference_detected_at_exact_power_and_interval_covers_it():
    n, p_a_only, p_b_only = 150, 0.10, 0.21  # B is 11 points better on average
    expected = _exact_mcnemar_rejection_rate(n, p_a_only, p_b_only, direction_b=True)
    assert 0.5 < expected < 0.95  # a setting where the rate says something
    detected = covered = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        a, b = _paired_correct(rng, n, p_a_only, p_b_only)
        row = compare_accuracy(a, b, rounds=1000, rng=rng)
        detected += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == B_BETTER
        covered += row["ci_low"] <= p_b_only - p_a_only <= row["ci_high"]
    assert _within(detected / SEEDS, expected), (detected / SEEDS, expected)
    assert _within(covered / SEEDS, 0.95), covered / SEEDS


def test_mmlu_identical_models_no_difference_at_about_one_minus_alpha():
    n, p = 150, 0.15
    size = _exact_mcnemar_rejection_rate(n, p, p, direction_b=False)
    assert size <= ALPHA  # the exact test never exceeds its level
    quiet = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(1000 + seed)
        a, b = _paired_correct(rng, n, p, p)
        row = compare_accuracy(a, b, rounds=10, rng=rng)
        quiet += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == NO_DIFFERENCE
    assert _within(quiet / SEEDS, 1 - size), (quiet / SEEDS, 1 - size)
    assert quiet / SEEDS >= 1 - ALPHA - 0.03


def _scores(rng: np.random.Generator, n: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    difficulty = rng.normal(55, 12, size=n)
    a = np.round(difficulty + rng.normal(0, 10, size=n))
    b = np.round(difficulty + rng.normal(0, 10, size=n)) + shift
    return a, b


def test_judge_score_identical_models_and_a_true_shift():
    quiet = detected = covered = 0
    seeds = 200
    for seed in range(seeds):
        rng = np.random.default_rng(2000 + seed)
        a, b = _scores(rng, 80, 0)
        row = compare_scores(a, b, rounds=10, rng=rng)
        quiet += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == NO_DIFFERENCE
        a, b = _scores(rng, 80, 5)  # B scores 5 points higher on every item on average
        row = compare_scores(a, b, rounds=1000, rng=rng)
        detected += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == B_BETTER
        covered += row["ci_low"] <= 5 <= row["ci_high"]
    assert _within(quiet / seeds, 1 - ALPHA, seeds), quiet / seeds
    # paired t power for a 5-point shift with sd(diff) ~ 14 at n = 80 is ~0.91; Wilcoxon ~0.95 of it
    assert detected / seeds >= 0.8
    assert _within(covered / seeds, 0.95, seeds), covered / seeds


def test_judge_pairwise_identical_models_sign_test():
    seeds = 200
    quiet = 0
    for seed in range(seeds):
        rng = np.random.default_rng(3000 + seed)
        strength = rng.uniform(1, 2, size=120)  # how hard each instruction is against the reference
        a = np.clip(strength + rng.normal(0, 0.3, size=120), 1, 2)
        b = np.clip(strength + rng.normal(0, 0.3, size=120), 1, 2)
        row = compare_preferences(a, b, rounds=10, rng=rng)
        quiet += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == NO_DIFFERENCE
    assert _within(quiet / seeds, 1 - ALPHA, seeds), quiet / seeds


def test_human_votes_power_matches_exact_binomial():
    votes, ties, p_b = 60, 0.2, 0.7
    # exact probability that the two-sided test rejects with B ahead, over the number of ties too
    expected = 0.0
    for decisive in range(1, votes + 1):
        k = np.arange(decisive + 1)
        rejects = (_two_sided_half(k, decisive) < ALPHA) & (2 * k > decisive)
        expected += stats.binom.pmf(decisive, votes, 1 - ties) * stats.binom.pmf(k[rejects], decisive, p_b).sum()
    detected = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(4000 + seed)
        outcome = rng.choice(3, size=votes, p=[(1 - ties) * (1 - p_b), (1 - ties) * p_b, ties])
        row = compare_votes(int(np.sum(outcome == 0)), int(np.sum(outcome == 1)), int(np.sum(outcome == 2)))
        detected += verdict(row["diff"], row["p_value"], ALPHA, row["detail"]["test_direction"]) == B_BETTER
    assert _within(detected / SEEDS, expected), (detected / SEEDS, expected)


@pytest.mark.parametrize("rows", [1, 4])
def test_holm_keeps_family_wise_error_for_identical_models(rows):
    """Four modes of identical models: "no detectable difference" in every mode for >= 1 - alpha."""
    from evalkit.compare.stats import holm

    seeds = 200
    all_quiet = 0
    for seed in range(seeds):
        rng = np.random.default_rng(5000 + seed)
        p_values = rng.uniform(size=rows)  # valid p-values under the null are uniform
        adjusted = holm(p_values)
        all_quiet += all(p >= ALPHA for p in adjusted)
    assert all_quiet / seeds >= 1 - ALPHA - 4 * np.sqrt(ALPHA * (1 - ALPHA) / seeds)
