"""Battles simulated from known Bradley-Terry strengths (Elo scale), for the rating tests and
the benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_battles(
    ratings: np.ndarray, n: int, rng: np.random.Generator, *, tie_rate: float = 0.0, names: list[str] | None = None
) -> pd.DataFrame:
    """``n`` battles between random distinct pairs, with A's expected score exactly the
    Bradley-Terry probability ``1 / (1 + 10 ** ((r_b - r_a) / 400))``.

    A tie (a quarter of them "tie (bothbad)") happens with probability ``tie_rate``; the win
    probability given no tie is set so that a tie counting half keeps A's expected score, which is
    what the ratings estimate (Arena counts a tie as half a win each way).
    """
    m = len(ratings)
    names = names or [f"model-{k:02d}" for k in range(m)]
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))
    if tie_rate and (p.min() < tie_rate / 2 or p.max() > 1 - tie_rate / 2):
        raise ValueError("ratings too far apart for this tie rate")
    win_given_no_tie = (p - tie_rate / 2) / (1 - tie_rate)
    u = rng.random(n)
    tie = u < tie_rate
    a_wins = rng.random(n) < win_given_no_tie
    winner = np.where(tie, np.where(u < tie_rate / 4, "tie (bothbad)", "tie"), np.where(a_wins, "model_a", "model_b"))
    names_arr = np.array(names)
    return pd.DataFrame({"model_a": names_arr[a], "model_b": names_arr[b], "winner": winner})


def centred(ratings: np.ndarray) -> np.ndarray:
    """True ratings on the fit's anchoring: mean 1000."""
    return ratings - ratings.mean() + 1000.0
