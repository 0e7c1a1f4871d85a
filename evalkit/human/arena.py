"""``evalkit arena``: Bradley-Terry ratings of the models in the store's votes (human runs, and
judge-pairwise runs when asked), with bootstrap intervals, a win-rate matrix and caveats.

The model and its fit are :mod:`evalkit.metrics.bradley_terry` (Chatbot Arena's definition).
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
from evalkit.metrics.bradley_terry import (
    BASE,
    BATTLE_COLUMNS,
    INIT_RATING,
    OUTCOME_TO_WINNER,
    SCALE,
    battle_counts,
    bootstrap_bradley_terry,
    disconnected_groups,
    fit_bradley_terry,
    separated_groups,
    validate_battles,
    win_rate_matrix,
)

if TYPE_CHECKING:
    from evalkit.store import ResultsStore

@dataclass
class ArenaResult:
    """Ratings table (``rows``, the ``--format json`` contract), win-rate matrix and caveats."""

    rows: list[dict[str, Any]]
    win_rate: pd.DataFrame
    bootstrap: pd.DataFrame | None
    n_battles: int
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def arena_ratings(
    battles: pd.DataFrame,
    *,
    rounds: int = 1000,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    n_jobs: int = 1,
) -> ArenaResult:
    """Ratings of all models in ``battles`` with bootstrap 95% intervals, best first."""
    if len(battles) == 0:
        raise EvalkitError("no battles to rate: import ratings with `evalkit pairs import` or pass --include-judge")
    ratings = fit_bradley_terry(battles)
    boot = bootstrap_bradley_terry(battles, rounds, seed, progress=progress, n_jobs=n_jobs) if rounds > 0 else None
    counts = battle_counts(battles)
    rows = []
    for model, rating in ratings.items():
        c = counts.loc[model]
        rows.append(
            {
                "model": model,
                "rating": float(rating),
                "ci_low": _number(boot[model].quantile(0.025)) if boot is not None else None,
                "ci_high": _number(boot[model].quantile(0.975)) if boot is not None else None,
                "battles": int(c["battles"]),
                "wins": int(c["wins"]),
                "losses": int(c["losses"]),
                "ties": int(c["ties"]),
            }
        )
    notes = []
    for groups in separated_groups(battles):
        order = " > ".join(", ".join(g) for g in groups)
        notes.append(
            f"no finite ratings for {order}: each group won (or tied) every battle against the groups "
            "after it, so the gaps between them are unbounded and the numbers shown are where the "
            "optimiser stopped; collect more votes"
        )
    if boot is not None and boot.attrs.get("rounds_without_finite_ratings"):
        share = boot.attrs["rounds_without_finite_ratings"] / rounds
        notes.append(
            f"in {share:.0%} of the bootstrap rounds some model won (or lost) every battle it had, so its "
            "rating there has no finite value and the intervals are wider than the data can "
            "pin down; collect more votes"
        )
    groups = disconnected_groups(battles)
    if len(groups) > 1:
        notes.append(
            "models form groups never compared with each other ("
            + "; ".join(", ".join(g) for g in groups)
            + "): ratings are comparable only within a group"
        )
    return ArenaResult(rows, win_rate_matrix(battles, list(ratings.index)), boot, len(battles), notes)


# -- the store ----------------------------------------------------------------------------------


def _preference_winner(preference: Any) -> str | None:
    """AlpacaEval preference (1 = output_1 better, 2 = output_2 better, 1.5 = draw) -> winner,
    discretised as AlpacaEval's discrete win rate does; None when the judge's answer was unparsed."""
    if preference is None:
        return None
    value = float(preference)
    if math.isnan(value):
        return None
    if value < 1.5:
        return "model_a"
    if value > 1.5:
        return "model_b"
    return "tie"


def battles_from_store(
    store: ResultsStore,
    run_ids: Iterable[str] | None = None,
    include_judge: Iterable[str] = (),
) -> pd.DataFrame:
    """Battles from ``human`` runs (all finished ones when ``run_ids`` is None) and, as extra
    battles, from ``judge-pairwise`` runs (``generator_1`` vs ``generator_2``).

    Columns: model_a, model_b, winner (Arena's labels), plus run_id, item_id and rater (the
    human rater, or ``judge:<judge model>``) so agreement can be computed from the same frame.
    """
    rows: list[dict[str, Any]] = []
    if run_ids is None:
        human_runs = [r for r in store.list_runs(kind="human") if r.status == "done"]
    else:
        human_runs = [store.get_run(rid, with_metrics=False) for rid in run_ids]
    for run in human_runs:
        if run.kind != "human":
            raise EvalkitError(f"run {run.id} is a {run.kind} run, not a human run")
        for item_id, payload in store.item_values(run.id):  # the vote fields, without the texts
            outcome = payload.get("outcome")
            if outcome not in OUTCOME_TO_WINNER:
                raise InputError(
                    f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOME_TO_WINNER)}",
                    path=f"run {run.id}", record=item_id, field="outcome",
                )
            rows.append(
                {
                    "model_a": payload.get("model_a"),
                    "model_b": payload.get("model_b"),
                    "winner": OUTCOME_TO_WINNER[outcome],
                    "run_id": run.id,
                    "item_id": item_id,
                    "rater": payload.get("rater"),
                }
            )
    for rid in include_judge:
        run = store.get_run(rid, with_metrics=False)
        if run.kind != "judge-pairwise":
            raise EvalkitError(f"--include-judge {rid}: a {run.kind} run, not a judge-pairwise run")
        judge = run.config.get("judge_model") or run.model or run.id
        for item_id, payload in store.item_values(run.id):
            winner = _preference_winner(payload.get("preference"))
            if winner is None:
                continue
            for key in ("generator_1", "generator_2"):
                if not payload.get(key):
                    raise InputError("missing model name", path=f"run {run.id}", record=item_id, field=key)
            rows.append(
                {
                    "model_a": payload["generator_1"],
                    "model_b": payload["generator_2"],
                    "winner": winner,
                    "run_id": run.id,
                    "item_id": item_id,
                    "rater": f"judge:{judge}",
                }
            )
    frame = pd.DataFrame(rows, columns=[*BATTLE_COLUMNS, "run_id", "item_id", "rater"])
    return validate_battles(frame, source="results store") if len(frame) else frame


def run_arena(
    store: ResultsStore,
    *,
    human_runs: Sequence[str] | None = None,
    include_judge: Sequence[str] = (),
    rounds: int = 1000,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    n_jobs: int = 1,
) -> ArenaResult:
    """Rate every model in the chosen runs and store the table as an ``arena`` run."""
    from evalkit.store import Metric, content_hash

    battles = battles_from_store(store, human_runs, include_judge)
    if len(battles) == 0:
        raise EvalkitError(
            "no battles in the store: import ratings with `evalkit pairs import KEY RATINGS...` "
            "(or Chatbot Arena battles with `evalkit import arena`), or pass --include-judge RUN"
        )
    result = arena_ratings(battles, rounds=rounds, seed=seed, progress=progress, n_jobs=n_jobs)
    judge_ids = [store.get_run(rid, with_metrics=False).id for rid in include_judge]  # prefixes -> ids
    config = {
        "human_runs": sorted(set(battles["run_id"]) - set(judge_ids)),
        "judge_runs": judge_ids,
        "bootstrap": rounds,
        "seed": seed,
        "n_battles": result.n_battles,
        "battles_hash": content_hash(battles[list(BATTLE_COLUMNS)].to_numpy().tolist()),
        "scale": SCALE,
        "base": BASE,
        "init_rating": INIT_RATING,
        "ties": "half win both ways; both bad = tie",
        "notes": result.notes,
    }
    with store.start_run("arena", None, config, resume=False) as run:
        metrics: dict[str, Any] = {}
        samples = []
        for row in result.rows:
            model = row["model"]
            metrics[f"bt_rating/{model}"] = Metric(row["rating"], None, row["battles"])
            metrics[f"bt_ci_low/{model}"] = row["ci_low"]
            metrics[f"bt_ci_high/{model}"] = row["ci_high"]
            metrics[f"battles/{model}"] = row["battles"]
            vs = {other: _number(v) for other, v in result.win_rate.loc[model].items() if other != model}
            samples.append((model, {**row, "win_rate_vs": vs}))
        run.add_samples(samples)
        run.log_metrics(metrics)
        result.run_id = run.id
    return result
