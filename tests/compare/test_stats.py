"""Each statistic on a case small enough to work out by hand, and against SciPy."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy import stats

from evalkit.compare import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    binomial_interval,
    bootstrap_mean_ci,
    holm,
    mcnemar_exact,
    sign_test,
    verdict,
    wilcoxon_signed_rank,
)


def test_mcnemar_counts_only_discordant_pairs_and_matches_hand_binomial():
    # 2 items only A got right, 8 only B got right, 5 both, 3 neither
    a = [1] * 2 + [0] * 8 + [1] * 5 + [0] * 3
    b = [0] * 2 + [1] * 8 + [1] * 5 + [0] * 3
    result = mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"], result["discordant"]) == (2, 8, 10)
    # two-sided exact: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert result["p_value"] == pytest.approx(float(Fraction(112, 1024)), abs=1e-12)
    assert result["p_value"] == pytest.approx(stats.binomtest(8, 10, 0.5).pvalue, abs=1e-15)
    # concordant items do not move the p-value
    assert mcnemar_exact(a + [1] * 50, b + [1] * 50)["p_value"] == result["p_value"]


def test_mcnemar_without_discordant_pairs_is_p_one_and_rejects_unpaired_input():
    assert mcnemar_exact([1, 0, 1], [1, 0, 1])["p_value"] == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1, 0, 1])


def test_sign_test_drops_zeros():
    d = [0.5, 2, 1, 3, 0.1, 4, 7, -1, 0, 0]
    result = sign_test(d)
    assert (result["positive"], result["negative"], result["zero"]) == (7, 1, 2)
    # 2 * P(X <= 1), X ~ Bin(8, 1/2) = 2 * 9 / 256
    assert result["p_value"] == pytest.approx(18 / 256, abs=1e-12)
    assert result["p_value"] == pytest.approx(stats.binomtest(7, 8).pvalue, abs=1e-15)
    assert sign_test([0, 0])["p_value"] == 1.0


def test_wilcoxon_exact_small_case_by_hand():
    # |d| ranks 1..6, only rank 2 negative: W- = 2. Subsets of {1..6} with rank sum <= 2:
    # {}, {1}, {2} -> P(W <= 2) = 3/64, two-sided p = 6/64.
    d = [1, -2, 3, 4, 5, 6]
    assert wilcoxon_signed_rank(d) == pytest.approx(6 / 64, abs=1e-12)
    assert wilcoxon_signed_rank(d) == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-15)


def test_wilcoxon_drops_zero_differences_and_all_zero_is_p_one():
    d = [1, -2, 3, 4, 5, 6]
    assert wilcoxon_signed_rank(d + [0, 0, 0]) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert wilcoxon_signed_rank([0, 0, 0]) == 1.0


def test_wilcoxon_large_sample_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    d = rng.integers(-3, 5, size=200)
    assert wilcoxon_signed_rank(d) == pytest.approx(stats.wilcoxon(d, zero_method="wilcox").pvalue, rel=1e-12)


def test_clopper_pearson_interval_closed_forms():
    # k = 0: lower 0, upper 1 - (alpha/2)^(1/n)
    low, high = binomial_interval(0, 10, 0.95)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    # k = n: symmetric
    low, high = binomial_interval(10, 10, 0.95)
    assert (low, high) == (pytest.approx(0.025 ** (1 / 10), abs=1e-9), 1.0)
    # general case: beta quantiles
    low, high = binomial_interval(5, 10, 0.95)
    assert low == pytest.approx(stats.beta.ppf(0.025, 5, 6), abs=1e-9)
    assert high == pytest.approx(stats.beta.ppf(0.975, 6, 5), abs=1e-9)
    assert (round(low, 4), round(high, 4)) == (0.1871, 0.8129)
    assert binomial_interval(0, 0) == (None, None)


def test_holm_hand_case():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02]
    assert holm([]) == []


def test_bootstrap_is_seeded_and_degenerate_for_constant_differences():
    d = np.random.default_rng(5).normal(0.3, 1, size=40)
    first = bootstrap_mean_ci(d, rounds=2000, rng=np.random.default_rng(7))
    again = bootstrap_mean_ci(d, rounds=2000, rng=np.random.default_rng(7))
    other = bootstrap_mean_ci(d, rounds=2000, rng=np.random.default_rng(8))
    assert first == again and first != other
    assert first[0] < d.mean() < first[1]
    assert bootstrap_mean_ci([2.5] * 9, rounds=100, rng=np.random.default_rng(0)) == (2.5, 2.5)
    assert bootstrap_mean_ci([], rounds=100, rng=np.random.default_rng(0)) == (None, None)


@pytest.mark.parametrize("distinct_values", [3, 60])  # multinomial counts / index draws inside
def test_bootstrap_agrees_with_naive_item_resampling(distinct_values):
    """Either way of drawing is the same distribution as resampling items one by one."""
    rng = np.random.default_rng(11)
    d = rng.integers(-1, 2, size=60).astype(float) if distinct_values == 3 else rng.normal(size=60)
    assert np.unique(d).size == distinct_values
    ours = bootstrap_mean_ci(d, rounds=40000, rng=np.random.default_rng(1))
    naive_rng = np.random.default_rng(2)
    naive = np.percentile([d[naive_rng.integers(0, d.size, size=d.size)].mean() for _ in range(15000)], [2.5, 97.5])
    assert ours == pytest.approx(tuple(naive), abs=0.02)
    narrower = bootstrap_mean_ci(d, rounds=40000, rng=np.random.default_rng(1), level=0.5)
    assert ours[0] < narrower[0] < narrower[1] < ours[1]


def test_bootstrap_handles_many_rounds_in_blocks():
    d = np.arange(5000, dtype=float)  # 5000 distinct values: 40 000 rounds need several blocks
    low, high = bootstrap_mean_ci(d, rounds=4000, rng=np.random.default_rng(0))
    se = d.std() / np.sqrt(d.size)
    assert low == pytest.approx(d.mean() - 1.96 * se, rel=0.01)
    assert high == pytest.approx(d.mean() + 1.96 * se, rel=0.01)


def test_verdict_rules():
    assert verdict(0.1, 0.01, 0.05) == B_BETTER
    assert verdict(-0.1, 0.01, 0.05) == A_BETTER
    assert verdict(0.1, 0.05, 0.05) == NO_DIFFERENCE  # not strictly below alpha
    assert verdict(0.1, None, 0.05) == NO_DIFFERENCE
    # the test points the other way than the mean: no side is declared better
    assert verdict(0.1, 0.001, 0.05, direction=-3) == NO_DIFFERENCE
    assert NO_DIFFERENCE == "no detectable difference at alpha"


def test_hand_binomial_helper_is_what_scipy_computes():
    # an independent check of the exact two-sided binomial p used above
    def two_sided(k, n):
        tail = sum(comb(n, i) for i in range(0, min(k, n - k) + 1))
        return min(1.0, 2 * tail / 2**n)

    for k, n in [(2, 10), (0, 5), (7, 8), (13, 30)]:
        assert stats.binomtest(k, n).pvalue == pytest.approx(two_sided(k, n), abs=1e-12)


def test_exact_binomial_against_one_half_is_scipys_binomtest():
    from evalkit.compare.stats import binomial_test_half

    cases = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 10), (8, 10), (5, 10), (13, 30), (0, 60), (60, 60), (29, 60)]
    cases += [(k, 14042) for k in (0, 6800, 6950, 7020, 7021, 7022, 7100, 7400, 14042)]  # full-MMLU sizes
    cases += [(k, 5001) for k in (2400, 2500, 2501, 2600)]
    for k, n in cases:
        assert binomial_test_half(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300), (k, n)
    assert binomial_test_half(0, 0) == 1.0 and binomial_test_half(3, 6) == 1.0
    assert binomial_test_half(2, 10) == float(Fraction(2 * (1 + 10 + 45), 1024))  # exact, not approximately


def test_exact_interval_is_scipys_clopper_pearson():
    for k, n, level in [(1, 2, 0.95), (3, 11, 0.9), (37, 60, 0.95), (120, 250, 0.99), (2499, 5000, 0.95)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
        assert binomial_interval(k, n, level) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))
