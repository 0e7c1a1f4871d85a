"""One comparison per mode, from paired per-item values to a result row.

These functions see only numbers paired item by item (A's value and B's value for the same
item), so they can be checked on hand-computed cases and simulations without a store. A row has
the keys of ``evalkit compare --format json``: ``mode``, ``a``, ``b``, ``diff`` (B - A),
``ci_low``, ``ci_high``, ``p_value``, ``p_holm``, ``n``, ``verdict``, then ``unit``,
``alpha``, ``refused``, ``runs`` and ``detail``. ``p_holm`` and ``verdict`` are filled in by
:func:`evalkit.compare.compare_models` once every mode's p-value is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evalkit.compare.stats import (
    binomial_interval,
    binomial_test,
    bootstrap_mean_ci,
    mcnemar_exact,
    sign_test,
    wilcoxon_signed_rank,
)

MODES = ("mmlu", "judge-score", "judge-pairwise", "human")


def result_row(
    mode: str,
    a: float | None,
    b: float | None,
    diff: float | None,
    ci: tuple[float | None, float | None],
    p_value: float | None,
    n: int,
    *,
    unit: str,
    direction: float | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "mode": mode,
        "a": a,
        "b": b,
        "diff": diff,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "p_value": p_value,
        "p_holm": None,
        "n": n,
        "verdict": None,
        "unit": unit,
        "alpha": None,
        "refused": None,
        "runs": {},
        "detail": {**(detail or {}), "test_direction": None if direction is None else float(np.sign(direction))},
    }


def refused_row(mode: str, reason: str, *, runs: dict[str, str] | None = None, detail: dict | None = None) -> dict[str, Any]:
    row = result_row(mode, None, None, None, (None, None), None, 0, unit="", detail=detail)
    row.update(refused=reason, runs=runs or {})
    return row


def compare_accuracy(
    correct_a: Sequence[bool],
    correct_b: Sequence[bool],
    *,
    rounds: int,
    rng: np.random.Generator,
    level: float = 0.95,
    mode: str = "mmlu",
) -> dict[str, Any]:
    """Accuracy of each, B - A with a paired bootstrap interval, exact McNemar p-value."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    n = int(a.size)
    if n == 0:
        return result_row(mode, None, None, None, (None, None), None, 0, unit="accuracy")
    mcnemar = mcnemar_exact(a, b)
    diff = float(b.mean() - a.mean())
    ci = bootstrap_mean_ci(b.astype(float) - a, rounds=rounds, rng=rng, level=level)
    detail = {
        "test": "exact McNemar (two-sided binomial test on discordant pairs)",
        "interval": f"paired percentile bootstrap over questions, {rounds} rounds",
        "a_only_correct": mcnemar["a_only"],
        "b_only_correct": mcnemar["b_only"],
        "both_correct": int(np.sum(a & b)),
        "neither_correct": int(np.sum(~a & ~b)),
    }
    return result_row(
        mode, float(a.mean()), float(b.mean()), diff, ci, mcnemar["p_value"], n,
        unit="accuracy", direction=mcnemar["b_only"] - mcnemar["a_only"], detail=detail,
    )


def compare_scores(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    *,
    rounds: int,
    rng: np.random.Generator,
    level: float = 0.95,
    mode: str = "judge-score",
) -> dict[str, Any]:
    """Mean judge score of each, mean paired difference with bootstrap interval, Wilcoxon p."""
    a = np.asarray(scores_a, dtype=float)
    b = np.asarray(scores_b, dtype=float)
    n = int(a.size)
    if n == 0:
        return result_row(mode, None, None, None, (None, None), None, 0, unit="score 0-100")
    d = b - a
    nonzero = d[d != 0]
    # the signed-rank statistic's own direction: positive ranks outweigh negative ones
    ranks = _rank_abs(nonzero)
    direction = float(ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())
    detail = {
        "test": "Wilcoxon signed-rank (two-sided, zero differences dropped)",
        "interval": f"paired percentile bootstrap over items, {rounds} rounds",
        "share_b_higher": float(np.mean(d > 0)),
        "share_equal": float(np.mean(d == 0)),
        "share_b_lower": float(np.mean(d < 0)),
    }
    return result_row(
        mode, float(a.mean()), float(b.mean()), float(d.mean()),
        bootstrap_mean_ci(d, rounds=rounds, rng=rng, level=level), wilcoxon_signed_rank(d), n,
        unit="score 0-100", direction=direction, detail=detail,
    )


def _rank_abs(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(np.abs(values)) if values.size else values


def compare_preferences(
    preferences_a: Sequence[float],
    preferences_b: Sequence[float],
    *,
    rounds: int,
    rng: np.random.Generator,
    level: float = 0.95,
    mode: str = "judge-pairwise",
) -> dict[str, Any]:
    """Two models judged against one reference: win rates (percent, AlpacaEval's), paired
    difference of preferences per instruction with bootstrap interval, sign test.

    Preferences are AlpacaEval's: in [1, 2], 2 = the model beat the reference, so a model's win
    rate is ``mean(preference - 1) * 100`` and the paired difference of the means is exactly
    the difference of the two win rates on these items.
    """
    a = np.asarray(preferences_a, dtype=float) - 1
    b = np.asarray(preferences_b, dtype=float) - 1
    n = int(a.size)
    if n == 0:
        return result_row(mode, None, None, None, (None, None), None, 0, unit="win rate %")
    d = (b - a) * 100
    signs = sign_test(d)
    low, high = bootstrap_mean_ci(d, rounds=rounds, rng=rng, level=level)
    detail = {
        "test": "sign test on per-instruction preference differences (two-sided, ties dropped)",
        "interval": f"paired percentile bootstrap over instructions, {rounds} rounds",
        "b_preferred_more": signs["positive"],
        "a_preferred_more": signs["negative"],
        "same_preference": signs["zero"],
    }
    return result_row(
        mode, float(a.mean() * 100), float(b.mean() * 100), float(d.mean()), (low, high), signs["p_value"], n,
        unit="win rate %", direction=signs["positive"] - signs["negative"], detail=detail,
    )


def compare_head_to_head_judge(
    b_wins: Sequence[float],
    *,
    rounds: int,
    rng: np.random.Generator,
    level: float = 0.95,
    mode: str = "judge-pairwise head-to-head",
) -> dict[str, Any]:
    """A judge run of A against B: B's win rate (percent) with bootstrap interval and sign test.

    ``b_wins`` per instruction is the judge's preference for B in [0, 1] (0.5 a tie; weighted
    verdicts in between). ``a``/``b`` are the two sides' win rates, ``diff`` = B's win rate - 50.
    """
    w = np.asarray(b_wins, dtype=float)
    n = int(w.size)
    if n == 0:
        return result_row(mode, None, None, None, (None, None), None, 0, unit="win rate %")
    low, high = bootstrap_mean_ci(w * 100, rounds=rounds, rng=rng, level=level)
    signs = sign_test(w - 0.5)
    win_rate = float(w.mean() * 100)
    detail = {
        "test": "sign test: instructions the judge gave to B vs to A (two-sided, ties dropped)",
        "interval": f"percentile bootstrap of B's win rate over instructions, {rounds} rounds",
        "b_win_rate": win_rate,
        "b_win_rate_ci": [low, high],
        "b_wins": signs["positive"],
        "a_wins": signs["negative"],
        "ties": signs["zero"],
    }
    return result_row(
        mode, 100 - win_rate, win_rate, win_rate - 50,
        (None if low is None else low - 50, None if high is None else high - 50), signs["p_value"], n,
        unit="win rate %", direction=signs["positive"] - signs["negative"], detail=detail,
    )


def compare_votes(a_wins: int, b_wins: int, ties: int, *, level: float = 0.95, mode: str = "human") -> dict[str, Any]:
    """Head-to-head human votes: shares of decisive votes each side won, exact binomial test.

    Ties (including "both bad") are excluded, not split: a tie says nothing about which is
    better, and splitting them would shrink the interval without new evidence. ``diff`` is
    B's share - A's share = 2 p_B - 1, with the exact (Clopper-Pearson) interval of p_B mapped
    the same way.
    """
    decisive = a_wins + b_wins
    if decisive == 0:
        return result_row(
            mode, None, None, None, (None, None), None, 0, unit="share of decisive votes",
            detail={"a_wins": a_wins, "b_wins": b_wins, "ties": ties, "ties_policy": "excluded"},
        )
    share_b = b_wins / decisive
    low, high = binomial_interval(b_wins, decisive, level)
    detail = {
        "test": "exact binomial test of B's share of decisive votes against 1/2",
        "interval": "exact (Clopper-Pearson) interval of B's share, shown as B - A = 2 p - 1",
        "a_wins": a_wins,
        "b_wins": b_wins,
        "ties": ties,
        "ties_policy": "excluded",
        "b_share": share_b,
        "b_share_ci": [low, high],
    }
    return result_row(
        mode, 1 - share_b, share_b, 2 * share_b - 1, (2 * low - 1, 2 * high - 1),
        binomial_test(b_wins, decisive), decisive,
        unit="share of decisive votes", direction=b_wins - a_wins, detail=detail,
    )
