"""AlpacaEval's pairwise metrics for judge-pairwise samples (the judge's runs and imported ones).

The metrics are AlpacaEval's (``alpaca_eval.metrics.get_winrate``), recomputed here so that
every judge-pairwise run, local or imported, is scored the same way:

* ``preference`` is in [1, 2], 2 = the model (``output_2``) preferred; 1.5 is a draw, and a
  legacy ``0`` means a draw too. ``None``/NaN (an unparsed verdict) and values outside [1, 2]
  are left out of every count, as AlpacaEval drops them.
* ``win_rate`` = mean(preference - 1) x 100; ``standard_error`` = its standard error of the mean
  (sample standard deviation, ddof = 1) x 100.
* ``n_wins`` / ``n_wins_base``: preference above / below 1.5; ``n_draws``: exactly 1.5;
  ``n_total``: parsed items.
* ``discrete_win_rate``: the same mean after rounding each preference to 1 or 2 (exact 1.5 stays
  a draw).
* ``avg_length``: mean number of characters of the model's outputs, truncated to an integer.
* ``length_controlled_winrate``: see :mod:`evalkit.metrics.length_control` for the GLM variant.
* ``parse_rate`` (evalkit's): parsed verdicts / verdicts asked of the judge (items with status
  ``ok`` or ``unparsed``, or no status; ``identical`` pairs need no verdict).

The published AlpacaEval 2 leaderboard numbers are exactly these, computed from the released
annotation files with their weighted (token-probability) preferences as they stand: no rescaling,
percent units (tested against ``weighted_alpaca_eval_gpt4_turbo_leaderboard.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from evalkit.metrics.length_control import length_controlled_winrate
from evalkit.store import Metric


def is_missing_number(value: Any) -> bool:
    """None or NaN: how AlpacaEval files and pandas write 'no value'."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def preference_value(value: Any) -> float | None:
    """A stored preference as AlpacaEval reads it: None when it is not a usable verdict."""
    if is_missing_number(value) or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    if value == 0:
        return 1.5  # AlpacaEval's legacy encoding of a draw
    return value if 1 <= value <= 2 else None


def pairwise_metrics(samples: Iterable[dict[str, Any]]) -> dict[str, Metric]:
    """AlpacaEval's metrics for judge-pairwise samples (``preference``, ``output_1``, ``output_2``)."""
    samples = list(samples)
    prefs = [preference_value(s.get("preference")) for s in samples]
    parsed = np.array([p for p in prefs if p is not None], dtype=float)
    n_all = len(samples)
    n_total = int(parsed.size)
    out: dict[str, Metric] = {}

    if n_total:
        shifted = parsed - 1
        win_rate = float(shifted.mean() * 100)
        # pandas' Series.sem: sample standard deviation (ddof=1) / sqrt(n); undefined for one item
        sem = float(shifted.std(ddof=1) / math.sqrt(n_total) * 100) if n_total > 1 else None
        # exact 1.5 stays a draw; anything else is rounded to the nearer verdict
        discrete = np.where(parsed == 1.5, 1.5, np.round(parsed)) - 1
        discrete_win_rate = float(discrete.mean() * 100)
    else:
        win_rate = sem = discrete_win_rate = None
    out["win_rate"] = Metric(win_rate, sem, n_total)
    out["standard_error"] = Metric(sem, None, n_total)
    out["n_wins"] = Metric(float((parsed > 1.5).sum()), None, n_total)
    out["n_wins_base"] = Metric(float((parsed < 1.5).sum()), None, n_total)
    out["n_draws"] = Metric(float((parsed == 1.5).sum()), None, n_total)
    out["n_total"] = Metric(float(n_total), None, n_total)
    out["discrete_win_rate"] = Metric(discrete_win_rate, None, n_total)

    lengths_2 = [len(s.get("output_2") or "") for s in samples]
    out["avg_length"] = Metric(float(int(np.mean(lengths_2))) if samples else None, None, n_all)

    pairs = {(s.get("generator_1"), s.get("generator_2")) for s in samples}
    if len(pairs) == 1 and (pair := next(iter(pairs)))[0] is not None and pair[0] == pair[1]:
        lc = 50.0  # the baseline against itself, by construction (as AlpacaEval does)
    else:
        lengths_1 = [len(s.get("output_1") or "") for s in samples]
        lc = length_controlled_winrate(prefs, lengths_1, lengths_2) if samples else None
    out["length_controlled_winrate"] = Metric(lc, None, n_total)
    # parse rate over the verdicts a judge was asked for: pairs settled without a call
    # (status "identical") are neither parsed nor unparsed answers
    asked = [p for s, p in zip(samples, prefs) if s.get("status", "ok") in ("ok", "unparsed")]
    n_parsed = sum(p is not None for p in asked)
    out["parse_rate"] = Metric((n_parsed / len(asked) if asked else 1.0) if samples else None, None, len(asked))
    return out
