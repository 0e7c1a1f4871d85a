"""Every variant against the plan's baseline, in every mode, with one Holm family.

Each (variant, mode) row comes from :func:`evalkit.compare.compare_models` (baseline = A,
variant = B, so ``diff`` > 0 favours the variant); the Holm adjustment is then redone over all
rows of all variants, because the plan asks all those questions at once. With several seeds,
the paired test uses the first seed of each, and ``seed_diffs`` lists the difference seed by
seed (variant seed *s* against the baseline's seed *s*, or its first seed) with its spread, so
that a difference within the seed-to-seed noise is visible as such.
"""

from __future__ import annotations

import statistics
from typing import Any

from evalkit.compare import A_BETTER, B_BETTER, REFUSED, compare_models, holm, verdict
from evalkit.errors import EvalkitError
from evalkit.experiment.plan import Plan
from evalkit.store import ResultsStore

VERDICTS = {B_BETTER: "variant better", A_BETTER: "baseline better", REFUSED: "refused"}


def _pairs(plan: Plan, variant: str) -> list[tuple[str, str]]:
    """(baseline model, variant model) per seed of the variant."""
    base_seeds = plan.seeds_of(plan.baseline)
    return [(plan.model_name(plan.baseline, s if s in base_seeds else base_seeds[0]), plan.model_name(variant, s))
            for s in plan.seeds_of(variant)]


def _compare(store: ResultsStore, a: str, b: str, plan: Plan, bootstrap: int) -> list[dict[str, Any]]:
    try:
        return compare_models(store, a, b, alpha=plan.compare.alpha, bootstrap=bootstrap, seed=plan.compare.seed)
    except EvalkitError:  # neither model has a finished evaluation yet
        return []


def compare_variants(store: ResultsStore, plan: Plan) -> tuple[list[dict[str, Any]], list[str]]:
    """``(rows, notes)``: one row per variant and mode (the baseline excluded)."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for variant in plan.variants:
        if variant == plan.baseline:
            continue
        pairs = _pairs(plan, variant)
        primary = _compare(store, *pairs[0], plan, plan.compare.bootstrap)
        if not primary:
            notes.append(f"{variant}: nothing to compare yet (no finished evaluations of {pairs[0][1]} or {pairs[0][0]})")
        by_seed: dict[str, list[float]] = {}
        for a, b in pairs[1:]:  # only the point differences are needed: one bootstrap round
            for row in _compare(store, a, b, plan, 1):
                if row["refused"] is None and row["diff"] is not None:
                    by_seed.setdefault(row["mode"], []).append(row["diff"])
        for row in primary:
            seed_diffs = [row["diff"], *by_seed.get(row["mode"], [])] if len(pairs) > 1 and row["diff"] is not None else []
            rows.append({
                **row, "variant": variant, "baseline": pairs[0][0], "model": pairs[0][1], "value": row["b"],
                "seed_diffs": seed_diffs, "seed_sd": statistics.stdev(seed_diffs) if len(seed_diffs) > 1 else None,
            })
    _holm_across(rows, plan.compare.alpha)
    return rows, notes


def _holm_across(rows: list[dict[str, Any]], alpha: float) -> None:
    tested = [r for r in rows if r["refused"] is None and r["p_value"] is not None]
    for row, adjusted in zip(tested, holm([r["p_value"] for r in tested])):
        row["p_holm"] = adjusted
    for row in rows:
        row["detail"]["holm_family_size"] = len(tested)
        outcome = REFUSED if row["refused"] is not None else verdict(
            row["diff"], row["p_holm"], alpha, row["detail"].get("test_direction"))
        row["verdict"] = VERDICTS.get(outcome, "no difference")
