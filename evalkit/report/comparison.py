"""The report's comparison view: paired comparisons (``evalkit.compare``) computed when the
report is rendered, for a bounded number of model pairs, and embedded in the page."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.report.collect import ReportStoreView
from evalkit.store import ResultsStore

MAX_PAIRS = 45  # every pair of up to 10 models; beyond that, the pairs a reader asks about first
REPORT_BOOTSTRAP = 2000  # resamples per interval in the page (evalkit compare defaults to 10000)
DIFFERING_ITEMS = 10


def choose_pairs(models: list[str], max_pairs: int = MAX_PAIRS) -> list[tuple[str, str]]:
    """All pairs when they fit; otherwise neighbours in leaderboard order ("is #3 really better
    than #4?") and every model against the leader, up to ``max_pairs``."""
    everything = list(combinations(models, 2))
    if len(everything) <= max_pairs:
        return everything
    chosen: list[tuple[str, str]] = []
    for pair in [*zip(models, models[1:]), *((models[0], m) for m in models[2:])]:
        if pair not in chosen:
            chosen.append(pair)
    return chosen[:max_pairs]


def _plain(value: Any) -> Any:
    """JSON-safe copy (numpy scalars, NaN) of what compare returns."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """What the page lists for one differing item (texts stay in the drill-down)."""
    title = row.get("instruction") or row.get("question") or row.get("item_id")
    return {"item_id": row.get("item_id"), "title": title if len(str(title)) <= 160 else str(title)[:159] + "…",
            "a": row.get("a"), "b": row.get("b"), "diff": row.get("diff")}


def compute_comparisons(
    store: ResultsStore, models: list[str], *, max_pairs: int = MAX_PAIRS, seed: int = 0,
) -> tuple[list[dict[str, Any]], str | None]:
    """(pairs, note): each pair ``{"a", "b", "rows", "differing", "error"}``; note says why
    there are none or what was left out. Each run's item values are read, and each pair of runs
    paired, once (through a :class:`ReportStoreView`, the report's own when it passes one)."""
    if len(models) < 2:
        return [], "Fewer than two models: nothing to compare."
    try:
        from evalkit.compare import compare_models
    except ImportError:
        return [], "This evalkit has no comparison module (evalkit.compare)."
    try:
        from evalkit.compare import items_differing
    except ImportError:
        items_differing = None
    try:
        from evalkit.compare.differing import ITEM_MODES
    except ImportError:
        ITEM_MODES = ("mmlu", "judge-score", "judge-pairwise")
    pairs = choose_pairs(models, max_pairs)
    if not isinstance(store, ReportStoreView):
        store = ReportStoreView(store)
    out = []
    for a, b in pairs:
        entry: dict[str, Any] = {"a": a, "b": b, "rows": [], "differing": [], "error": None}
        try:
            entry["rows"] = [
                {k: _plain(v) for k, v in row.items() if k != "detail"}
                for row in compare_models(store, a, b, bootstrap=REPORT_BOOTSTRAP, seed=seed)
            ]
        except EvalkitError as exc:
            entry["error"] = str(exc)
        compared = {r.get("mode") for r in entry["rows"] if not r.get("refused")}
        for mode in ITEM_MODES if items_differing is not None else ():
            if mode not in compared:
                continue
            try:
                rows = items_differing(store, a, b, mode=mode, limit=DIFFERING_ITEMS)
            except EvalkitError:
                continue  # the table above already says why this mode was not compared
            entry["differing"] += [{**_plain(_brief(r)), "mode": mode} for r in rows]
        out.append(entry)
    total = len(models) * (len(models) - 1) // 2
    note = None if len(pairs) == total else f"{len(pairs)} of {total} pairs were compared for this page; run `evalkit compare A B` for others."
    return out, note
