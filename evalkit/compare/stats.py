"""Paired statistics for comparing two models on the same items.

The tests themselves come from SciPy (``betaincinv`` for the Clopper-Pearson interval,
``binomtest`` against p != 1/2, ``wilcoxon`` for the signed-rank test); this module only decides
what is paired with what. Three pieces are written here, each a few lines:

* the exact two-sided binomial test against p = 1/2 (the exact McNemar and sign tests), in
  integer arithmetic: the same p-value as ``scipy.stats.binomtest``, without importing
  ``scipy.stats``, which costs about 1.4 s, more than `evalkit leaderboard`'s whole budget
  (its significance stars need only this test; tests/compare/test_stats.py checks it against SciPy);

* the paired percentile bootstrap, vectorised with a seeded ``numpy.random.Generator``;
* Holm's step-down adjustment. SciPy has no Holm (``scipy.stats.false_discovery_control`` is
  Benjamini-Hochberg/Yekutieli, which controls the false discovery rate, not the family-wise
  error a "B is better" verdict needs) and statsmodels' ``multipletests`` would be a heavy
  dependency for six lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

B_BETTER = "B better"
A_BETTER = "A better"
NO_DIFFERENCE = "no detectable difference at alpha"
REFUSED = "refused"

# The bootstrap draws resamples in blocks so that memory stays bounded (about 32 MB of counts
# per block) whatever the number of items and rounds.
_BLOCK_CELLS = 4_000_000


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Exact McNemar test: a two-sided binomial test on the discordant pairs.

    ``a_only`` counts items only A got right, ``b_only`` items only B got right; under the
    null hypothesis each discordant item is equally likely to go either way.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("correct_a and correct_b must pair the same items")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    discordant = a_only + b_only
    p_value = binomial_test_half(b_only, discordant)
    return {"a_only": a_only, "b_only": b_only, "discordant": discordant, "p_value": p_value}


def sign_test(differences: Sequence[float]) -> dict:
    """Two-sided sign test of paired differences (B - A); zero differences are dropped."""
    d = np.asarray(differences, dtype=float)
    positive = int(np.sum(d > 0))
    negative = int(np.sum(d < 0))
    n = positive + negative
    p_value = binomial_test_half(positive, n)
    return {"positive": positive, "negative": negative, "zero": int(d.size - n), "p_value": p_value}


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float | None, float | None]:
    """Exact (Clopper-Pearson) interval for a proportion; ``(None, None)`` without trials."""
    if trials == 0:
        return None, None
    # the exact interval's ends are beta quantiles (what binomtest's proportion_ci finds by root
    # search); scipy.special, not scipy.stats, whose import alone takes over a second
    from scipy.special import betaincinv

    k, n, tail = int(successes), int(trials), (1 - level) / 2
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, tail))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - tail))
    return low, high


def binomial_test(successes: int, trials: int, p: float = 0.5) -> float:
    if p == 0.5:
        return binomial_test_half(successes, trials)
    from scipy import stats as _stats

    return 1.0 if trials == 0 else float(_stats.binomtest(int(successes), int(trials), p).pvalue)


def binomial_test_half(successes: int, trials: int) -> float:
    """Exact two-sided binomial test of ``successes`` in ``trials`` against p = 1/2.

    The distribution is symmetric, so the outcomes at most as likely as the one seen are the two
    tails beyond it and its mirror image: p = 2 P(X <= min(k, n - k)), 1 when k = n/2 (SciPy's
    ``binomtest`` gives the same, computed in floating point). Summed exactly over integers.
    """
    k, n = int(successes), int(trials)
    if n == 0 or 2 * k == n:
        return 1.0
    low = min(k, n - k)
    term = tail = 1  # C(n, 0)
    for i in range(low):
        term = term * (n - i) // (i + 1)  # C(n, i + 1), exact
        tail += term
    return min(1.0, float(Fraction(2 * tail, 1 << n)))


def wilcoxon_signed_rank(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (B - A).

    Zero differences are dropped (Wilcoxon's original treatment, SciPy's default), so items both
    models scored the same carry no evidence either way; SciPy picks the exact distribution for
    small samples without ties and the normal approximation otherwise. All-zero differences give
    p = 1 (nothing to test) rather than SciPy's NaN.
    """
    from scipy import stats as _stats

    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return 1.0
    return float(_stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def bootstrap_mean_ci(
    values: Sequence[float], *, rounds: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of paired differences.

    Items are resampled as pairs (the differences already pair them). Resampling n items with
    replacement is the same distribution as drawing multinomial counts over the distinct values,
    which for paired 0/1 outcomes (three distinct differences) costs three numbers per round
    instead of n; with many distinct values (weighted preferences) drawing indices is cheaper
    (benchmarks/bench_compare.py measures both).
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0 or rounds <= 0:
        return None, None
    means = bootstrap_means(v, rounds=rounds, rng=rng)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_means(values: np.ndarray, *, rounds: int, rng: np.random.Generator) -> np.ndarray:
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size * _MULTINOMIAL_MAX_SHARE <= values.size:
        return _means_from_counts(distinct, counts, rounds, rng)
    return _means_from_indices(values, rounds, rng)


# A multinomial category costs far more than one index draw: with 805 items, 79 distinct values
# were already slower than drawing indices (benchmarks/bench_compare.py), 3 were hundreds of
# times faster. Counts are drawn only when there are at least 32 items per distinct value.
_MULTINOMIAL_MAX_SHARE = 32


def _means_from_counts(distinct: np.ndarray, counts: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    n = int(counts.sum())
    block = max(1, _BLOCK_CELLS // distinct.size)
    means = np.empty(rounds)
    for start in range(0, rounds, block):
        stop = min(rounds, start + block)
        means[start:stop] = rng.multinomial(n, counts / n, size=stop - start) @ distinct / n
    return means


def _means_from_indices(values: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    block = max(1, _BLOCK_CELLS // n)
    means = np.empty(rounds)
    for start in range(0, rounds, block):
        stop = min(rounds, start + block)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def percentile_interval(draws: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None]:
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(d, [tail, 100 - tail])
    return float(low), float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given).

    The k-th smallest p-value is multiplied by (m - k + 1), then a running maximum keeps the
    adjusted values in the same order as the raw ones, capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in adjusted]


def verdict(diff: float | None, p_adjusted: float | None, alpha: float, direction: float | None = None) -> str:
    """"B better" / "A better" when the (adjusted) p-value is below alpha, else no difference.

    ``direction`` is the sign the test itself points to (more items B won than A, say); when it
    disagrees with the sign of ``diff`` (a sign test and a mean can point different ways) no
    side is declared better.
    """
    if diff is None or p_adjusted is None or not p_adjusted < alpha or diff == 0:
        return NO_DIFFERENCE
    if direction is not None and np.sign(direction) != np.sign(diff):
        return NO_DIFFERENCE
    return B_BETTER if diff > 0 else A_BETTER
