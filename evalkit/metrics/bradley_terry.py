"""Bradley-Terry ratings on the Elo scale, computed as Chatbot Arena computes them.

Chatbot Arena (FastChat ``fastchat/serve/monitor/elo_analysis.py``, ``compute_mle_elo``) fits a
logistic regression without intercept or penalty: one column per model, ``+ln(10)`` for model A,
``-ln(10)`` for model B, label 1 when A won; every battle is entered twice, a tie once as an A win
and once as a B win (so a tie is half a win each way), and "tie (bothbad)" is a tie. A coefficient
``beta`` becomes ``400 * beta + 1000``. The bootstrap resamples battles with replacement and refits;
the 95% interval is the 2.5th-97.5th percentile of the refitted ratings.

This module follows that definition with one change that gives the same maximum-likelihood
estimate much faster: battles are first aggregated into one row per (unordered model pair, label)
with the count as ``sample_weight`` (the log-likelihood is a sum over battles, so identical rows
add up to a weighted row; FastChat's later ``compute_elo_mle_with_tie`` does the same). A
bootstrap round then draws the counts of the distinct (pair, outcome) categories from a
multinomial, which is exactly the distribution of counts that resampling battles gives.

Without a penalty the ratings are only defined up to a common shift; L-BFGS started at zero keeps
their mean at zero (every row of the design sums to zero, so every gradient does), which is why
Arena's ratings average ``INIT_RATING``. We re-centre explicitly so that holds exactly, in every
bootstrap round too. The maximum is found by Newton's method, all bootstrap rounds at once
(see ``_newton_ratings``); scikit-learn's fit is kept for data whose maximum does not exist.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evalkit.errors import EvalkitError, InputError

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
# human outcome (rating page, README `human` payload) -> Chatbot Arena's winner label
OUTCOME_TO_WINNER = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
BATTLE_COLUMNS = ("model_a", "model_b", "winner")

# The optimiser's tolerance: tight enough that the aggregated fit and a per-battle fit agree to
# well under 0.01 rating points; with ~12 L-BFGS iterations on a few thousand rows it is cheap.
_TOL = 1e-8
_MAX_ITER = 1000


# -- battles ------------------------------------------------------------------------------------


def validate_battles(battles: pd.DataFrame, *, source: str = "battles") -> pd.DataFrame:
    """Check the Arena battle columns; returns the frame with string model names."""
    missing = [c for c in BATTLE_COLUMNS if c not in battles.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(BATTLE_COLUMNS)}", path=source)
    bad = ~battles["winner"].isin(WINNERS)
    if bad.any():
        row = battles.index[bad.to_numpy().argmax()]
        raise InputError(
            f"unknown winner {battles.loc[row, 'winner']!r}; expected one of {', '.join(WINNERS)}",
            path=source, record=row, field="winner",
        )
    for col in ("model_a", "model_b"):
        empty = battles[col].isna() | (battles[col].astype(str).str.len() == 0)
        if empty.any():
            row = battles.index[empty.to_numpy().argmax()]
            raise InputError("model name is empty", path=source, record=row, field=col)
    same = battles["model_a"] == battles["model_b"]
    if same.any():
        row = battles.index[same.to_numpy().argmax()]
        raise InputError(f"a model cannot battle itself ({battles.loc[row, 'model_a']!r})", path=source, record=row)
    out = battles.copy()
    out["model_a"] = out["model_a"].astype(str)
    out["model_b"] = out["model_b"].astype(str)
    return out


@dataclass
class _Aggregated:
    """Battles folded into distinct (unordered pair, outcome) categories.

    ``pair_i < pair_j`` index ``models``; a category's outcome is 0 (``i`` won), 1 (tie) or 2
    (``j`` won) and ``counts`` says how often it occurred.
    """

    models: list[str]
    pair_i: np.ndarray
    pair_j: np.ndarray
    cat_pair: np.ndarray
    cat_outcome: np.ndarray
    counts: np.ndarray
    n_battles: int

    @classmethod
    def from_battles(cls, battles: pd.DataFrame) -> _Aggregated:
        battles = validate_battles(battles)
        models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
        index = {m: k for k, m in enumerate(models)}
        a = battles["model_a"].map(index).to_numpy(np.int64)
        b = battles["model_b"].map(index).to_numpy(np.int64)
        winner = battles["winner"].to_numpy()
        # outcome seen from model_a: 0 = a won, 1 = tie, 2 = b won
        outcome = np.where(winner == "model_a", 0, np.where(winner == "model_b", 2, 1))
        i, j = np.minimum(a, b), np.maximum(a, b)
        outcome = np.where(a > b, 2 - outcome, outcome)  # re-express from the lower index's side
        m = len(models)
        keys, counts = np.unique((i * m + j) * 3 + outcome, return_counts=True)
        pair_keys, cat_pair = np.unique(keys // 3, return_inverse=True)
        return cls(
            models=models,
            pair_i=pair_keys // m,
            pair_j=pair_keys % m,
            cat_pair=cat_pair,
            cat_outcome=keys % 3,
            counts=counts.astype(np.float64),
            n_battles=int(len(battles)),
        )

    def design(self) -> tuple[np.ndarray, np.ndarray]:
        """X (2 rows per pair: label 1 then label 0) and the labels, as in Arena's regression."""
        n_pairs, m = len(self.pair_i), len(self.models)
        rows = np.arange(n_pairs)
        x = np.zeros((2 * n_pairs, m))
        x[rows, self.pair_i] = math.log(BASE)
        x[rows, self.pair_j] = -math.log(BASE)
        x[n_pairs:] = x[:n_pairs]
        y = np.r_[np.ones(n_pairs), np.zeros(n_pairs)]
        return x, y

    def weights(self, counts: np.ndarray) -> np.ndarray:
        """Sample weights of the design's rows for the given category counts.

        Arena enters each battle twice: a win gives two rows for the winner, a tie one each way.
        """
        n_pairs = len(self.pair_i)
        to_i = np.where(self.cat_outcome == 0, 2.0, np.where(self.cat_outcome == 1, 1.0, 0.0))
        w_i = np.bincount(self.cat_pair, weights=counts * to_i, minlength=n_pairs)
        w_j = np.bincount(self.cat_pair, weights=counts * (2.0 - to_i), minlength=n_pairs)
        return np.r_[w_i, w_j]


def _estimator(*, warm_start: bool = False):
    from sklearn.linear_model import LogisticRegression

    # C=inf is sklearn's spelling of penalty=None (deprecated in 1.8): Arena's unpenalised fit.
    return LogisticRegression(fit_intercept=False, C=np.inf, tol=_TOL, max_iter=_MAX_ITER, warm_start=warm_start)


def _fit(agg: _Aggregated, x: np.ndarray, y: np.ndarray, weights: np.ndarray, warm=None) -> np.ndarray:
    """Ratings (Elo scale, mean INIT_RATING) of ``agg.models``; NaN for a model with no battles.

    ``warm``: an estimator with ``warm_start`` to start from its last solution; used only when
    every model is present (the number of coefficients must not change).
    """
    n_pairs = len(agg.pair_i)
    pair_used = (weights[:n_pairs] + weights[n_pairs:]) > 0
    rows = np.r_[pair_used, pair_used]
    present = np.zeros(len(agg.models), dtype=bool)
    present[agg.pair_i[pair_used]] = True
    present[agg.pair_j[pair_used]] = True
    model = warm if warm is not None and present.all() else _estimator()
    with warnings.catch_warnings():
        # a model that won (or lost) every battle has no finite MLE; callers report that
        # through separated_groups() instead of a ConvergenceWarning on every bootstrap round
        warnings.simplefilter("ignore")
        model.fit(x[rows][:, present], y[rows], sample_weight=weights[rows])
    ratings = np.full(len(agg.models), np.nan)
    scaled = SCALE * model.coef_[0]
    ratings[present] = scaled - scaled.mean() + INIT_RATING
    return ratings


@contextlib.contextmanager
def _fast_fits() -> Iterator[None]:
    """Settings for many fits of a small, already checked design.

    BLAS threads only add overhead on matrices this small (and the machine may be shared), and
    scikit-learn's per-call input and parameter checks cost more than the fit itself here: the
    design is built (finite) by this module and the parameters are constants.
    """
    from sklearn import config_context
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), config_context(assume_finite=True, skip_parameter_validation=True):
        yield


def fit_bradley_terry(battles: pd.DataFrame) -> pd.Series:
    """Bradley-Terry ratings (model -> rating, Elo scale 400 / base 10, mean 1000), best first."""
    agg = _Aggregated.from_battles(battles)
    if agg.n_battles == 0:
        raise EvalkitError("no battles to rate")
    weights = agg.weights(agg.counts)
    solved_ratings, solved = _newton_ratings(agg, weights[None, :])
    if solved[0]:
        ratings = solved_ratings[0]
    else:  # no finite maximum: where scikit-learn's optimiser stops, as before
        x, y = agg.design()
        with _fast_fits():
            ratings = _fit(agg, x, y, weights)
    return pd.Series(ratings, index=agg.models, name="rating").sort_values(ascending=False)


_CHUNK = 50  # bootstrap rounds per task; fixed, so results do not depend on n_jobs


# Newton's method on many bootstrap rounds at once. The log-likelihood is concave and smooth, so
# from zero Newton reaches the maximum in a handful of steps, and the rounds' small (models x
# models) systems are solved together by numpy: about a hundred times faster than a
# scikit-learn fit per round, which was most of `evalkit compare`'s time (seconds for 1000
# rounds). It lands on the same maximum that the per-round L-BFGS fit approximates to its
# tolerance. A round where the maximum does not exist (a model won or lost everything) or that
# does not converge is fitted by scikit-learn as before, so its arbitrary values are found the
# way they always were.
_NEWTON_MAX_STEPS = 50
_NEWTON_TOL = 1e-10  # largest coefficient change (in log10 odds) at which a round has converged
_NEWTON_SATURATED = 30.0  # log odds between two models that met (10^13 to one): a runaway, not a fit


def _newton_ratings(agg: _Aggregated, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ratings, solved) for rounds given by rows of design ``weights``: ratings (Elo scale, mean
    INIT_RATING over the models present, NaN for absent ones) and which rounds converged."""
    rounds, m, n_pairs = len(weights), len(agg.models), len(agg.pair_i)
    ln_base = math.log(BASE)
    w_i, w_j = weights[:, :n_pairs], weights[:, n_pairs:]
    total = w_i + w_j
    rows = np.arange(n_pairs)
    diff = np.zeros((n_pairs, m))  # design row of a pair: +1 for i, -1 for j
    diff[rows, agg.pair_i] = 1.0
    diff[rows, agg.pair_j] = -1.0
    # each pair adds h * d d^T to the Hessian: +h at (i,i) and (j,j), -h at (i,j) and (j,i)
    spread = np.zeros((n_pairs, m * m))
    spread[rows, agg.pair_i * m + agg.pair_i] = 1.0
    spread[rows, agg.pair_j * m + agg.pair_j] = 1.0
    spread[rows, agg.pair_i * m + agg.pair_j] = -1.0
    spread[rows, agg.pair_j * m + agg.pair_i] = -1.0
    present = (total @ np.abs(diff)) > 0
    # the likelihood is flat along a common shift (and along an absent model): fixed by adding
    # the all-ones matrix and a 1 on an absent model's diagonal, which leaves the optimum alone
    fixed = np.ones((m, m))[None, :, :] + np.einsum("rk,kl->rkl", (~present).astype(float), np.eye(m))
    beta = np.zeros((rounds, m))
    solved = np.zeros(rounds, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(_NEWTON_MAX_STEPS):
            active = ~solved
            if not active.any():
                break
            b = beta[active]
            p = 0.5 * (1.0 + np.tanh(0.5 * ln_base * (b @ diff.T)))  # P(i beats j), overflow-free
            gradient = ln_base * ((w_i[active] - total[active] * p) @ diff)
            curvature = ln_base**2 * total[active] * p * (1.0 - p)
            hessian = (curvature @ spread).reshape(-1, m, m) + fixed[active]
            try:
                step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break  # a singular round: every unsolved round goes to the fallback
            beta[active] = b + step
            largest = np.abs(step).max(axis=1)
            newly = np.flatnonzero(active)[largest < _NEWTON_TOL]
            solved[newly] = True
            if not np.isfinite(beta).all():
                break
    # without a finite maximum (a model won or lost everything) the steps run the odds off to
    # where floating point saturates and the steps become exactly zero: not a solution
    odds = np.abs(beta @ diff.T) * ln_base
    solved &= ~((odds > _NEWTON_SATURATED) & (total > 0)).any(axis=1)
    scaled = SCALE * beta
    scaled[~present] = np.nan
    ratings = scaled - np.nanmean(scaled, axis=1, keepdims=True) + INIT_RATING
    return ratings, solved & np.isfinite(np.where(present, ratings, 0.0)).all(axis=1)


def _bootstrap_chunk(agg: _Aggregated, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Fit the rounds given by rows of category ``counts``: (ratings, rounds without finite MLE)."""
    weights = np.stack([agg.weights(c.astype(np.float64)) for c in counts]) if len(counts) else np.empty((0, 2 * len(agg.pair_i)))
    out, solved = _newton_ratings(agg, weights)
    # a round Newton solved has a maximum (a stationary point), so its estimate exists; only the
    # others are checked (a graph search per round, the slow part otherwise)
    fallback = np.flatnonzero(~solved)
    finite = solved.copy()
    for k in fallback:
        finite[k] = _mle_exists(agg, weights[k])
    if fallback.size:
        x, y = agg.design()
        with _fast_fits():
            # each round starts from the previous solution (all near the full-data estimate,
            # where the chunk starts): fewer L-BFGS iterations, the same optimum to the tolerance
            warm = _estimator(warm_start=True)
            _fit(agg, x, y, agg.weights(agg.counts), warm)
            for k in fallback:
                out[k] = _fit(agg, x, y, weights[k], warm)
    return out, int((~finite).sum())


def bootstrap_bradley_terry(
    battles: pd.DataFrame,
    rounds: int = 1000,
    seed: int = 0,
    *,
    progress: Callable[[int], None] | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Ratings refitted on ``rounds`` resamples of the battles (rows: rounds, columns: models,
    ordered by median rating as Arena does). A model absent from a resample is NaN in that round.
    ``attrs["rounds_without_finite_ratings"]`` counts the rounds where the estimate does not exist.

    ``n_jobs`` > 1 fits chunks of rounds in that many processes (joblib); the resamples are drawn
    here, in order, so the result is the same for any ``n_jobs``.
    """
    agg = _Aggregated.from_battles(battles)
    if agg.n_battles == 0:
        raise EvalkitError("no battles to rate")
    rng = np.random.default_rng(seed)
    probabilities = agg.counts / agg.counts.sum()

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, rounds, _CHUNK):
            yield rng.multinomial(agg.n_battles, probabilities, size=min(_CHUNK, rounds - start))

    if n_jobs == 1:
        results: Iterable[tuple[np.ndarray, int]] = (_bootstrap_chunk(agg, c) for c in chunks())
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_bootstrap_chunk)(agg, c) for c in chunks())
    parts, not_finite = [], 0
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the rounds' small matrices gain nothing from threads, which on a shared
    # machine made the Newton steps several times slower
    with threadpool_limits(limits=1):
        for ratings, bad in results:
            parts.append(ratings)
            not_finite += bad
            if progress is not None:
                progress(len(ratings))
    out = np.concatenate(parts) if parts else np.empty((0, len(agg.models)))
    frame = pd.DataFrame(out, columns=agg.models)
    frame = frame[frame.median().sort_values(ascending=False).index]
    # rounds in which some model won (or lost) everything: its rating there is arbitrary
    frame.attrs["rounds_without_finite_ratings"] = not_finite
    return frame


# -- what the ratings can and cannot say --------------------------------------------------------


def _score_graph(agg: _Aggregated, weights: np.ndarray):
    """Components of the graph with an edge i -> j when i scored against j (won or tied)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m, n_pairs = len(agg.models), len(agg.pair_i)
    src = np.r_[agg.pair_i, agg.pair_j]
    dst = np.r_[agg.pair_j, agg.pair_i]
    points = np.r_[weights[:n_pairs], weights[n_pairs:]]  # half-points i scored against j
    positive = points > 0
    graph = coo_matrix((np.ones(positive.sum()), (src[positive], dst[positive])), shape=(m, m))
    _, weak = connected_components(graph, directed=True, connection="weak")
    _, strong = connected_components(graph, directed=True, connection="strong")
    return weak, strong, src, dst, points


def _mle_exists(agg: _Aggregated, weights: np.ndarray) -> bool:
    weak, strong, *_ = _score_graph(agg, weights)
    return len(np.unique(weak)) == len(np.unique(strong))


def separated_groups(battles: pd.DataFrame) -> list[list[list[str]]]:
    """Where the maximum-likelihood ratings do not exist (Ford's condition fails).

    Among models compared with each other, a group that never lost to the rest (or never beat
    it) would be pushed to +/- infinity, and the optimiser stops somewhere arbitrary. For each
    such set of compared models, returns its groups (strongly connected in "scored against",
    ties counting both ways) from the best to the worst; empty when all ratings are finite.
    """
    agg = _Aggregated.from_battles(battles)
    if len(agg.models) < 2:
        return []
    weak, strong, src, dst, points = _score_graph(agg, agg.weights(agg.counts))
    out = []
    for component in np.unique(weak):
        members = np.flatnonzero(weak == component)
        groups = np.unique(strong[members])
        if len(groups) < 2:
            continue
        # order groups by their net points against the rest: in a separated set of groups the
        # group that never lost comes first, the one that never scored last
        net = {}
        for g in groups:
            inside = strong == g
            out_pts = points[inside[src] & ~inside[dst]].sum()
            in_pts = points[~inside[src] & inside[dst]].sum()
            net[g] = out_pts - in_pts
        ordered = sorted(groups, key=lambda g: -net[g])
        out.append([sorted(agg.models[k] for k in members if strong[k] == g) for g in ordered])
    return out


def unbounded_models(battles: pd.DataFrame) -> list[str]:
    """Models whose rating has no finite maximum-likelihood estimate (see separated_groups)."""
    return sorted(model for groups in separated_groups(battles) for group in groups for model in group)


def disconnected_groups(battles: pd.DataFrame) -> list[list[str]]:
    """Groups of models never compared with each other, directly or through others."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    agg = _Aggregated.from_battles(battles)
    m = len(agg.models)
    graph = coo_matrix((np.ones(len(agg.pair_i)), (agg.pair_i, agg.pair_j)), shape=(m, m))
    n, labels = connected_components(graph, directed=False)
    return [sorted(agg.models[k] for k in range(m) if labels[k] == g) for g in range(n)]


# -- tables -------------------------------------------------------------------------------------


def battle_counts(battles: pd.DataFrame) -> pd.DataFrame:
    """Per model: battles, wins, losses, ties ("both bad" counts as a tie)."""
    battles = validate_battles(battles)
    models = sorted(set(battles["model_a"]) | set(battles["model_b"]))
    out = pd.DataFrame(0, index=models, columns=["battles", "wins", "losses", "ties"], dtype=np.int64)
    for side, other, win in (("model_a", "model_b", "model_a"), ("model_b", "model_a", "model_b")):
        out["battles"] = out["battles"].add(battles[side].value_counts(), fill_value=0).astype(np.int64)
        won = battles[battles["winner"] == win][side].value_counts()
        lost = battles[battles["winner"] == ("model_b" if win == "model_a" else "model_a")][side].value_counts()
        tied = battles[battles["winner"].isin(["tie", "tie (bothbad)"])][side].value_counts()
        out["wins"] = out["wins"].add(won, fill_value=0).astype(np.int64)
        out["losses"] = out["losses"].add(lost, fill_value=0).astype(np.int64)
        out["ties"] = out["ties"].add(tied, fill_value=0).astype(np.int64)
    return out


def win_rate_matrix(battles: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Fraction of non-tied battles in which the row model beat the column model (NaN: none),
    as Arena's win-fraction heatmap (ties left out)."""
    battles = validate_battles(battles)
    models = list(order) if order is not None else sorted(set(battles["model_a"]) | set(battles["model_b"]))
    decided = battles[battles["winner"].isin(["model_a", "model_b"])]
    winner = np.where(decided["winner"] == "model_a", decided["model_a"], decided["model_b"])
    loser = np.where(decided["winner"] == "model_a", decided["model_b"], decided["model_a"])
    wins = pd.crosstab(pd.Series(winner, name="row"), pd.Series(loser, name="col"))
    wins = wins.reindex(index=models, columns=models, fill_value=0).astype(float)
    total = wins + wins.T
    rate = wins / total.where(total > 0)
    rate.index.name = None
    rate.columns.name = None
    return rate
