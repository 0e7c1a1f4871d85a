"""``compare_models``: is B better than A, mode by mode, from the items both were measured on."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evalkit.compare.modes import (
    MODES,
    compare_accuracy,
    compare_head_to_head_judge,
    compare_preferences,
    compare_scores,
    compare_votes,
    refused_row,
)
from evalkit.compare.selection import NoRuns, NotComparable, PairedRuns, memoized, pair_runs, select_pair
from evalkit.compare.stats import REFUSED, holm, percentile_interval, verdict
from evalkit.errors import EvalkitError, InputError
from evalkit.heap import no_cycle_collection
from evalkit.store import ResultsStore, RunRecord

# Bradley-Terry bootstrap rounds refit a logistic regression each; beyond 1000 rounds the
# percentile interval no longer moves visibly, so the human mode caps its rounds there.
BT_MAX_ROUNDS = 1000


def compare_models(
    store: ResultsStore,
    model_a: str,
    model_b: str,
    *,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    bootstrap: int = 10000,
    seed: int = 0,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """One row per mode (see :mod:`evalkit.compare.modes` for the keys), B compared with A.

    ``metrics``: modes to compare (default: every mode where either model has results; a mode
    asked for by name is always shown, refused with the reason when it cannot be compared).
    Verdicts use Holm-adjusted p-values across the modes shown; intervals are at level
    1 - alpha; resampling is seeded per mode, so the same store and seed give the same numbers.
    ``progress`` shows a progress bar (on stderr) for the Bradley-Terry refits, the slow part.
    """
    if model_a == model_b:
        raise EvalkitError(f"compare needs two different models (got {model_a!r} twice)")
    if not 0 < alpha < 1:
        raise EvalkitError(f"--alpha must be between 0 and 1 (got {alpha})")
    if bootstrap < 1:
        raise EvalkitError(f"--bootstrap must be at least 1 (got {bootstrap})")
    if seed < 0:
        raise EvalkitError(f"--seed must be 0 or more (got {seed})")
    if isinstance(metrics, str):
        metrics = metrics.split(",")
    asked = list(dict.fromkeys(m.strip() for m in metrics)) if metrics else None
    unknown = [m for m in asked or () if m not in MODES]
    if unknown:
        raise EvalkitError(f"unknown mode(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(MODES)}")
    level = 1 - alpha
    rows = []
    with no_cycle_collection():
        for mode in asked or MODES:
            rng = np.random.default_rng([seed, zlib.crc32(mode.encode())])
            try:
                row = _MODE_FUNCTIONS[mode](
                    store, model_a, model_b, rounds=bootstrap, rng=rng, level=level, seed=seed, progress=progress
                )
            except NoRuns as exc:
                if asked is None:
                    continue
                row = refused_row(mode, str(exc))
            except NotComparable as exc:
                row = refused_row(mode, str(exc), runs=exc.runs, detail=exc.detail)
            rows.append(row)
    if not rows:
        raise EvalkitError(
            f"no finished runs of {model_a!r} or {model_b!r} to compare in {store.path}; see `evalkit runs list`"
        )
    _apply_holm(rows, alpha)
    return rows


def _apply_holm(rows: list[dict[str, Any]], alpha: float) -> None:
    tested = [r for r in rows if r["refused"] is None and r["p_value"] is not None]
    for row, p_adjusted in zip(tested, holm([r["p_value"] for r in tested])):
        row["p_holm"] = p_adjusted
    for row in rows:
        row["alpha"] = alpha
        row["detail"]["holm_family_size"] = len(tested)
        if row["refused"] is not None:
            row["verdict"] = REFUSED
        else:
            row["verdict"] = verdict(row["diff"], row["p_holm"], alpha, row["detail"].get("test_direction"))


# -- one pair of runs (the leaderboard's significance marks) -------------------------------------


def paired_test(store: ResultsStore, kind: str, run_a: RunRecord, run_b: RunRecord) -> dict[str, Any] | None:
    """Compare's own test of two given runs on the items both have (exact McNemar for MMLU,
    Wilcoxon for judge scores, sign test for pairwise preferences): its result row, or None when
    the runs cannot be paired (no stored items, different settings)."""
    test = {"mmlu": _mmlu_paired, "judge-score": _judge_score_paired, "judge-pairwise": _judge_pairwise_paired}.get(kind)
    if test is None:
        return None
    try:
        paired = memoized(store, ("pair", kind, run_a.id, run_b.id), lambda: pair_runs(store, kind, run_a, run_b))
        # the p-values come from exact tests; the bootstrap interval is not used here
        return test(paired, rounds=1, rng=np.random.default_rng(0), level=0.95)
    except NotComparable:
        return None


# -- MMLU -----------------------------------------------------------------------------------


def _require(payload: dict, name: str, run: RunRecord, item_id: str) -> Any:
    if name not in payload:
        raise InputError("missing in the sample payload", path=f"run {run.id} ({run.kind})", record=item_id, field=name)
    return payload[name]


def _mmlu(store, model_a, model_b, *, rounds, rng, level, **_) -> dict:
    return _mmlu_paired(select_pair(store, "mmlu", model_a, model_b), rounds=rounds, rng=rng, level=level)


def _correct(paired: PairedRuns, side: str) -> np.ndarray:
    column = paired.column(side, "correct")  # no call per item: 14k items x many pairs
    if None in column:  # missing (name the first item without it) or null (not correct)
        run, payloads = (paired.run_a, paired.payloads_a) if side == "a" else (paired.run_b, paired.payloads_b)
        column = [_require(p, "correct", run, i) for i, p in zip(paired.item_ids, payloads)]
    return np.array([bool(c) for c in column], dtype=bool)


def _mmlu_paired(paired: PairedRuns, *, rounds, rng, level) -> dict:
    correct_a = _correct(paired, "a")
    correct_b = _correct(paired, "b")
    row = compare_accuracy(correct_a, correct_b, rounds=rounds, rng=rng, level=level)
    categories = np.array([str(c or "unknown") for c in paired.column("a", "category")])
    row["detail"]["categories"] = [
        compare_accuracy(correct_a[categories == c], correct_b[categories == c], rounds=rounds, rng=rng, level=level, mode=f"mmlu/{c}")
        for c in sorted(set(categories))
    ]
    return _finish(row, paired, "per-category p-values are descriptive (not Holm-adjusted)")


# -- judge score ----------------------------------------------------------------------------


def _judge_score(store, model_a, model_b, *, rounds, rng, level, **_) -> dict:
    return _judge_score_paired(select_pair(store, "judge-score", model_a, model_b), rounds=rounds, rng=rng, level=level)


def _judge_score_paired(paired: PairedRuns, *, rounds, rng, level) -> dict:
    keep = [
        (pa["score"], pb["score"])
        for pa, pb in zip(paired.payloads_a, paired.payloads_b)
        if pa.get("score") is not None and pb.get("score") is not None
    ]
    if not keep:
        raise NotComparable("no item has a parsed score from both runs")
    scores_a, scores_b = (np.array(v, dtype=float) for v in zip(*keep))
    row = compare_scores(scores_a, scores_b, rounds=rounds, rng=rng, level=level)
    dropped = len(paired.item_ids) - len(keep)
    row["detail"]["excluded_unscored"] = dropped
    return _finish(row, paired, f"{dropped} item{'s' if dropped != 1 else ''} without a parsed score in A or B left out" if dropped else None)


# -- judge pairwise -------------------------------------------------------------------------


def preference_value(payload: dict, run: RunRecord, item_id: str) -> float | None:
    """AlpacaEval's preference in [1, 2]; None when unparsed. 0 is AlpacaEval's old draw code."""
    value = payload.get("preference")
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"not a number: {value!r}", path=f"run {run.id}", record=item_id, field="preference") from None
    if np.isnan(value):
        return None
    if value == 0:
        return 1.5
    if not 1 <= value <= 2:
        raise InputError(f"{value} is outside [1, 2]", path=f"run {run.id}", record=item_id, field="preference")
    return value


def _head_to_head_runs(store: ResultsStore, model_a: str, model_b: str) -> list[RunRecord]:
    """Judge-pairwise runs of one model (generator_2) against the other as the reference
    (generator_1 on every item, or the run's configured reference)."""
    found = []
    for model, other in ((model_a, model_b), (model_b, model_a)):
        for run in store.list_runs(kind="judge-pairwise", model=model, status="done"):
            references = {p.get("generator_1") for _, p in store.item_values(run.id)}
            if run.config.get("reference") == other or references == {other}:
                found.append(run)
    return found


def _judge_pairwise(store, model_a, model_b, *, rounds, rng, level, **_) -> dict:
    head_runs = _head_to_head_runs(store, model_a, model_b)
    skip = {r.id for r in head_runs}
    head_row = None
    if head_runs:
        head_row = _head_to_head(store, max(head_runs, key=lambda r: r.finished_at or r.created_at), model_a, model_b, rounds=rounds, rng=rng, level=level)
    try:
        paired = select_pair(store, "judge-pairwise", model_a, model_b, exclude_a=skip, exclude_b=skip)
    except (NotComparable, NoRuns) as exc:
        if head_row is None:
            raise
        head_row["mode"] = "judge-pairwise"
        head_row["detail"]["common_reference"] = f"not compared: {exc}"
        return head_row
    row = _judge_pairwise_paired(paired, rounds=rounds, rng=rng, level=level)
    row["detail"]["head_to_head"] = head_row
    return row


def _judge_pairwise_paired(paired: PairedRuns, *, rounds, rng, level) -> dict:
    keep = []
    for item, pa, pb in zip(paired.item_ids, paired.payloads_a, paired.payloads_b):
        va, vb = preference_value(pa, paired.run_a, item), preference_value(pb, paired.run_b, item)
        if va is not None and vb is not None:
            keep.append((va, vb))
    if not keep:
        raise NotComparable("no instruction has a parsed preference from both runs")
    prefs_a, prefs_b = (np.array(v) for v in zip(*keep))
    row = compare_preferences(prefs_a, prefs_b, rounds=rounds, rng=rng, level=level)
    dropped = len(paired.item_ids) - len(keep)
    row["detail"].update(
        reference=paired.payloads_a[0].get("generator_1") or paired.run_a.config.get("reference"),
        excluded_unparsed=dropped,
        stored_win_rate={
            side: (run.metrics["win_rate"].value if "win_rate" in run.metrics else None)
            for side, run in (("a", paired.run_a), ("b", paired.run_b))
        },
    )
    return _finish(row, paired, f"{dropped} instructions unparsed in A or B left out" if dropped else None)


def _head_to_head(store, run: RunRecord, model_a, model_b, *, rounds, rng, level) -> dict:
    b_wins = []
    for item, payload in store.item_values(run.id):
        value = preference_value(payload, run, item)
        if value is None:
            continue
        # preference 2 = output_2 better, and output_2 is the run's model (README payload)
        b_wins.append(value - 1 if run.model == model_b else 2 - value)
    row = compare_head_to_head_judge(b_wins, rounds=rounds, rng=rng, level=level)
    row["runs"] = {"head_to_head": run.id}
    return row


# -- human votes ----------------------------------------------------------------------------


def _human(store, model_a, model_b, *, rounds, level, seed, progress, **_) -> dict:
    human_runs = [r.id for r in store.list_runs(kind="human", status="done")]
    if not human_runs:
        raise NoRuns("no finished human runs in the store")
    from evalkit.human.arena import battles_from_store

    def read_battles() -> tuple[Any, Any, Any, Any, set]:
        frame = battles_from_store(store, run_ids=human_runs)
        # plain arrays for the head-to-head counts: a report asks for dozens of pairs
        first, second = frame["model_a"].to_numpy(dtype=object), frame["model_b"].to_numpy(dtype=object)
        winner = frame["winner"].to_numpy(dtype=object)
        won = np.where(winner == "model_a", first, np.where(winner == "model_b", second, None))
        return frame, first, second, won, set(first) | set(second)

    battles, first, second, won, voted = memoized(store, ("battles", tuple(human_runs)), read_battles)
    missing = [m for m in (model_a, model_b) if m not in voted]
    if len(missing) == 2:
        raise NoRuns(f"no human votes on {model_a!r} or {model_b!r}")
    if missing:
        raise NotComparable(f"no human votes on {missing[0]!r}")
    in_pair = ((first == model_a) & (second == model_b)) | ((first == model_b) & (second == model_a))
    winner = won[in_pair]
    a_wins, b_wins = int(np.sum(winner == model_a)), int(np.sum(winner == model_b))
    row = compare_votes(a_wins, b_wins, int(in_pair.sum()) - a_wins - b_wins, level=level)
    row["runs"] = {"human": ",".join(human_runs)}
    row["detail"]["bradley_terry"] = _bradley_terry(
        store, battles, model_a, model_b, rounds=rounds, seed=seed, level=level, progress=progress
    )
    if a_wins + b_wins == 0:
        raise _refuse_with(row, f"no decisive head-to-head human votes between {model_a!r} and {model_b!r} "
                           f"({len(winner)} ties); the Bradley-Terry difference is in the detail")
    return row


# Ratings fitted on all human votes are the same for every pair of models, so comparing many
# pairs (the report does) refits them once: keyed by the battles' content, rounds and seed.
_BT_CACHE: dict[tuple, tuple[Any, Any]] = {}
_BT_CACHE_SIZE = 4


def _bradley_terry_fits(store, battles, *, rounds: int, seed: int, progress: bool):
    import hashlib

    import pandas as pd

    from evalkit.metrics.bradley_terry import BATTLE_COLUMNS, bootstrap_bradley_terry, fit_bradley_terry

    rows = pd.util.hash_pandas_object(battles[list(BATTLE_COLUMNS)], index=False).to_numpy()
    key = (hashlib.sha256(rows.tobytes()).hexdigest(), rounds, seed)
    if key in _BT_CACHE:
        return _BT_CACHE[key]
    stored = _stored_fits(store, key)
    if stored is not None:
        _BT_CACHE[key] = stored
        return stored
    ratings = fit_bradley_terry(battles)
    if progress:
        from rich.progress import Progress

        from evalkit.output import console

        with Progress(console=console(stderr=True), transient=True) as bar:
            task = bar.add_task("Bradley-Terry bootstrap", total=rounds)
            draws = bootstrap_bradley_terry(battles, rounds=rounds, seed=seed, progress=lambda k: bar.advance(task, k))
    else:
        draws = bootstrap_bradley_terry(battles, rounds=rounds, seed=seed)
    while len(_BT_CACHE) >= _BT_CACHE_SIZE:
        _BT_CACHE.pop(next(iter(_BT_CACHE)))
    _BT_CACHE[key] = (ratings, draws)
    _store_fits(store, key, ratings, draws)
    return ratings, draws


# The fits are also kept in the store's cache (keyed by the battles' content, rounds and seed):
# the bootstrap refits Bradley-Terry a thousand times (seconds), and every `evalkit compare` of
# any two models, and every report, needs the same fits until the votes change. Floats go
# through JSON exactly (repr round-trips), so a cached fit gives the same numbers. v2: fits by
# Newton's method (evalkit.metrics.bradley_terry), which differ from v1's in the fifth decimal.
_BT_STORE_KEY = "compare/bradley-terry/v2/"


def _stored_fits(store, key: tuple):
    import pandas as pd

    try:
        value = store.cache_get(_BT_STORE_KEY + "/".join(map(str, key)))
    except Exception:  # a store without a cache (or read-only and damaged): compute instead
        return None
    if not value:
        return None
    ratings = pd.Series(value["ratings"], index=value["models"], dtype=float)
    draws = pd.DataFrame(value["draws"], columns=value["models"], dtype=float)
    return ratings, draws


def _store_fits(store, key: tuple, ratings, draws) -> None:
    import sqlite3

    # a model absent from a resample is NaN in that round: JSON null, read back as NaN
    draws_list = [[None if v != v else v for v in row] for row in draws[list(ratings.index)].to_numpy(dtype=float).tolist()]
    value = {"models": [str(m) for m in ratings.index], "ratings": [float(v) for v in ratings.to_numpy()], "draws": draws_list}
    try:
        store.cache_put(_BT_STORE_KEY + "/".join(map(str, key)), value)
    except (sqlite3.OperationalError, AttributeError, ValueError):
        pass  # a read-only store: the fits are recomputed next time


def _bradley_terry(store, battles, model_a, model_b, *, rounds, seed, level, progress) -> dict:
    rounds = min(rounds, BT_MAX_ROUNDS)
    ratings, draws = _bradley_terry_fits(store, battles, rounds=rounds, seed=seed, progress=progress)
    differences = (draws[model_b] - draws[model_a]).to_numpy(dtype=float)
    low, high = percentile_interval(differences, level)
    return {
        "a": float(ratings[model_a]),
        "b": float(ratings[model_b]),
        "diff": float(ratings[model_b] - ratings[model_a]),
        "ci_low": low,
        "ci_high": high,
        "rounds": rounds,
        "battles": int(len(battles)),
        "models": int(len(ratings)),
        "scale": "Elo (400, base 10, mean 1000), fitted on all human votes",
    }


def _refuse_with(row: dict, reason: str) -> NotComparable:
    return NotComparable(reason, runs=row["runs"], detail=row["detail"])


# -- shared ---------------------------------------------------------------------------------


def _finish(row: dict, paired: PairedRuns, note: str | None) -> dict:
    row["runs"] = {**paired.runs, **row["runs"]}
    notes = [*paired.notes, *([note] if note else [])]
    if notes:
        row["detail"]["notes"] = notes
    return row


_MODE_FUNCTIONS: dict[str, Callable[..., dict]] = {
    "mmlu": _mmlu,
    "judge-score": _judge_score,
    "judge-pairwise": _judge_pairwise,
    "human": _human,
}
