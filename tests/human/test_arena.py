"""Bradley-Terry ratings: closed-form cases, recovery of known strengths, interval coverage, and
equality with two independent computations (direct likelihood maximisation with SciPy, and
Chatbot Arena's one-row-per-battle logistic regression)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression

from evalkit.errors import InputError
from evalkit.human.arena import arena_ratings
from evalkit.metrics.bradley_terry import (
    battle_counts,
    bootstrap_bradley_terry,
    fit_bradley_terry,
    separated_groups,
    unbounded_models,
    win_rate_matrix,
)
from tests.human.simulate import centred, simulate_battles


def battles(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def reference_mle(frame: pd.DataFrame) -> pd.Series:
    """Independent reference: maximise the Bradley-Terry log-likelihood directly (a tie scores
    half), on the Elo scale, with SciPy's BFGS; then centre at 1000."""
    models = sorted(set(frame["model_a"]) | set(frame["model_b"]))
    idx = {m: k for k, m in enumerate(models)}
    a = frame["model_a"].map(idx).to_numpy()
    b = frame["model_b"].map(idx).to_numpy()
    score = frame["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}).to_numpy()

    def nll(r):
        d = (r[a] - r[b]) * math.log(10) / 400
        return -(score * log_expit(d) + (1 - score) * log_expit(-d)).sum()

    def grad(r):
        d = (r[a] - r[b]) * math.log(10) / 400
        g = -(score - 1 / (1 + np.exp(-d))) * math.log(10) / 400
        out = np.zeros(len(models))
        np.add.at(out, a, g)
        np.add.at(out, b, -g)
        return out

    res = minimize(nll, np.zeros(len(models)), jac=grad, method="BFGS", options={"gtol": 1e-10, "maxiter": 10000})
    return pd.Series(res.x - res.x.mean() + 1000, index=models)


def arena_per_battle(frame: pd.DataFrame) -> pd.Series:
    """Chatbot Arena's regression as published: every battle entered twice, a tie once each way."""
    models = pd.Series(np.arange(len(set(frame["model_a"]) | set(frame["model_b"]))),
                       index=sorted(set(frame["model_a"]) | set(frame["model_b"])))
    doubled = pd.concat([frame, frame], ignore_index=True)
    n = len(doubled)
    x = np.zeros((n, len(models)))
    x[np.arange(n), models[doubled["model_a"]].to_numpy()] = math.log(10)
    x[np.arange(n), models[doubled["model_b"]].to_numpy()] = -math.log(10)
    y = np.zeros(n)
    y[(doubled["winner"] == "model_a").to_numpy()] = 1.0
    tie = np.array(doubled["winner"].isin(["tie", "tie (bothbad)"]))
    tie[n // 2:] = False
    y[tie] = 1.0
    fit = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=10000).fit(x, y)
    return pd.Series(400 * fit.coef_[0] + 1000, index=models.index)


# -- closed forms ------------------------------------------------------------------------------


def test_two_models_closed_form():
    # A beats B 3 times, loses once: P(A) = 3/4, so r_A - r_B = 400 log10(3), mean 1000
    r = fit_bradley_terry(battles(*[("A", "B", "model_a")] * 2, ("B", "A", "model_b"), ("A", "B", "model_b")))
    gap = 400 * math.log10(3)
    assert r["A"] == pytest.approx(1000 + gap / 2, abs=1e-3)
    assert r["B"] == pytest.approx(1000 - gap / 2, abs=1e-3)
    assert list(r.index) == ["A", "B"]


def test_tie_counts_half_a_win_each_way_and_both_bad_is_a_tie():
    # A: 2 wins, 1 loss, 2 ties -> score 3 of 5, P(A) = 0.6
    frame = battles(("A", "B", "model_a"), ("B", "A", "model_b"), ("A", "B", "model_b"), ("A", "B", "tie"), ("B", "A", "tie"))
    r = fit_bradley_terry(frame)
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(1.5), abs=1e-3)
    both_bad = frame.replace({"winner": {"tie": "tie (bothbad)"}})
    pd.testing.assert_series_equal(fit_bradley_terry(both_bad), r)
    only_ties = fit_bradley_terry(battles(("A", "B", "tie"), ("B", "C", "tie (bothbad)"), ("C", "A", "tie")))
    assert np.allclose(only_ties.to_numpy(), 1000, atol=1e-6)


def test_counts_and_win_rate_matrix_by_hand():
    frame = battles(
        ("A", "B", "model_a"), ("B", "A", "model_a"), ("A", "B", "tie"), ("A", "C", "model_a"),
        ("C", "B", "tie (bothbad)"), ("B", "C", "model_a"),
    )
    counts = battle_counts(frame)
    assert counts.loc["A"].to_dict() == {"battles": 4, "wins": 2, "losses": 1, "ties": 1}
    assert counts.loc["B"].to_dict() == {"battles": 5, "wins": 2, "losses": 1, "ties": 2}
    assert counts.loc["C"].to_dict() == {"battles": 3, "wins": 0, "losses": 2, "ties": 1}
    rate = win_rate_matrix(frame)
    assert rate.loc["A", "B"] == 0.5 and rate.loc["B", "A"] == 0.5  # the tie is left out
    assert rate.loc["A", "C"] == 1.0 and rate.loc["C", "A"] == 0.0
    assert rate.loc["B", "C"] == 1.0
    assert np.isnan(rate.loc["A", "A"])


# -- against independent computations --------------------------------------------------------------


def test_equals_direct_likelihood_maximisation_and_arena_per_battle_regression():
    rng = np.random.default_rng(7)
    true = rng.normal(0, 120, 8)
    frame = simulate_battles(true, 3000, rng, tie_rate=0.15)
    ours = fit_bradley_terry(frame).sort_index()
    reference = reference_mle(frame).sort_index()
    arena = arena_per_battle(frame).sort_index()
    assert np.abs(ours - reference).max() < 0.01
    # aggregated, weighted rows give Arena's per-battle fit (same likelihood)
    assert np.abs(ours - arena).max() < 0.01
    assert ours.mean() == pytest.approx(1000, abs=1e-9)


def test_recovers_known_strengths():
    rng = np.random.default_rng(11)
    true = np.linspace(-250, 250, 12)
    rng.shuffle(true)
    names = [f"m{k}" for k in range(12)]
    frame = simulate_battles(true, 6000, rng, tie_rate=0.1, names=names)
    fitted = fit_bradley_terry(frame)[names].to_numpy()
    assert spearmanr(fitted, true).statistic >= 0.95
    assert np.abs(fitted - centred(true)).max() < 60  # Elo points, ~6000 battles among 12


def test_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    true = np.array([-150.0, -60.0, 0.0, 70.0, 140.0])
    covered = total = 0
    for sim in range(20):
        rng = np.random.default_rng(1000 + sim)
        frame = simulate_battles(true, 400, rng, tie_rate=0.1)
        boot = bootstrap_bradley_terry(frame, rounds=100, seed=sim)
        truth = dict(zip([f"model-{k:02d}" for k in range(5)], centred(true)))
        for model, value in truth.items():
            low, high = boot[model].quantile(0.025), boot[model].quantile(0.975)
            covered += low <= value <= high
            total += 1
    coverage = covered / total
    print(f"coverage {coverage:.3f} of {total} intervals")
    assert 0.88 <= coverage <= 0.99, coverage


def test_bootstrap_is_seeded_and_shaped_rounds_by_models():
    rng = np.random.default_rng(3)
    frame = simulate_battles(np.array([0.0, 50.0, 100.0]), 300, rng)
    one = bootstrap_bradley_terry(frame, rounds=20, seed=5)
    two = bootstrap_bradley_terry(frame, rounds=20, seed=5)
    other = bootstrap_bradley_terry(frame, rounds=20, seed=6)
    assert one.shape == (20, 3)
    pd.testing.assert_frame_equal(one, two)
    assert not one.equals(other)
    assert np.allclose(one.mean(axis=1), 1000)  # every round is anchored at 1000
    assert one.attrs["rounds_without_finite_ratings"] == 0


def test_arena_table_contract_and_caveats():
    frame = battles(("A", "B", "model_a"), ("A", "B", "model_a"), ("B", "C", "model_a"), ("C", "B", "model_a"))
    result = arena_ratings(frame, rounds=50)
    assert [r["model"] for r in result.rows][0] == "A"
    assert set(result.rows[0]) == {"model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties"}
    assert sum(r["rating"] for r in result.rows) / 3 == pytest.approx(1000)
    # A never lost: no finite maximum-likelihood gap between A and the rest, and the result says so
    assert separated_groups(frame) == [[["A"], ["B", "C"]]]
    assert unbounded_models(frame) == ["A", "B", "C"]
    assert any(n.startswith("no finite ratings for A > B, C") for n in result.notes)
    assert any(re.match(r"in \d+% of the bootstrap rounds some model won", n) for n in result.notes)
    apart = battles(("A", "B", "model_a"), ("B", "A", "model_a"), ("C", "D", "tie"))
    assert any("never compared" in n for n in arena_ratings(apart, rounds=0).notes)
    assert unbounded_models(apart) == []


def test_bad_battles_are_refused():
    with pytest.raises(InputError, match="unknown winner 'draw'"):
        fit_bradley_terry(battles(("A", "B", "draw")))
    with pytest.raises(InputError, match="cannot battle itself"):
        fit_bradley_terry(battles(("A", "A", "tie")))


def test_bootstrap_in_two_processes_gives_the_same_result():
    rng = np.random.default_rng(4)
    frame = simulate_battles(np.array([0.0, 40.0, 80.0, 120.0]), 500, rng, tie_rate=0.1)
    one = bootstrap_bradley_terry(frame, rounds=60, seed=2)
    two = bootstrap_bradley_terry(frame, rounds=60, seed=2, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)


def test_bootstrap_rounds_equal_a_separate_per_round_regression():
    """The rounds are solved together by Newton's method; each must be the maximum-likelihood fit
    that scikit-learn's regression finds for that round's resample on its own."""
    from evalkit.metrics import bradley_terry as bt

    rng = np.random.default_rng(21)
    frame = simulate_battles(np.linspace(-200, 200, 10), 2500, rng, tie_rate=0.1)
    boot = bootstrap_bradley_terry(frame, rounds=30, seed=4)
    agg = bt._Aggregated.from_battles(frame)
    draws = np.random.default_rng(4).multinomial(agg.n_battles, agg.counts / agg.counts.sum(), size=30)  # the same resamples
    x, y = agg.design()
    for k, counts in enumerate(draws):
        weights = agg.weights(counts.astype(np.float64))
        separate = bt._fit(agg, x, y, weights)  # a fresh regression per round
        assert np.abs(boot.loc[k, agg.models].to_numpy() - separate).max() < 0.01


def test_a_round_without_a_finite_maximum_falls_back_to_the_regression():
    from evalkit.metrics import bradley_terry as bt

    frame = battles(("A", "B", "model_a"), ("A", "B", "model_a"), ("B", "C", "model_a"), ("C", "B", "model_a"))
    agg = bt._Aggregated.from_battles(frame)
    ratings, solved = bt._newton_ratings(agg, agg.weights(agg.counts)[None, :])
    assert not solved[0]  # A never lost: no maximum, Newton does not claim one
    boot = bootstrap_bradley_terry(frame, rounds=20, seed=1)
    assert boot.attrs["rounds_without_finite_ratings"] > 0
    assert np.isfinite(boot.to_numpy()[~np.isnan(boot.to_numpy())]).all()
