"""Which runs a report or leaderboard covers, with each run's provenance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit import schema
from evalkit.report.provenance import Provenance, provenance
from evalkit.store import ResultsStore, RunRecord


@dataclass
class Collected:
    runs: list[RunRecord]
    provenance: dict[str, Provenance] = field(default_factory=dict)

    def of_kind(self, *kinds: str) -> list[RunRecord]:
        return [r for r in self.runs if r.kind in kinds]


class ReportStoreView:
    """The store as the report's leaderboard and comparisons see it: each run's item values and
    the run listing read once, and a memo for what many pairs of models recompute (paired runs,
    human battles; see :func:`evalkit.compare.selection.memoized`). Everything else goes to the
    store itself."""

    def __init__(self, store: ResultsStore):
        self._store = store
        self._runs: list[RunRecord] | None = None
        self._values: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self.memo: dict[tuple, Any] = {}

    def item_values(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        """A run's cached item values, decoded once per report (every pair of models with this
        run reads them)."""
        if run_id not in self._values:
            self._values[run_id] = self._store.item_values(run_id)
        return self._values[run_id]

    def list_runs(self, *, kind: str | None = None, model: str | None = None, status: str | None = None) -> list[RunRecord]:
        if self._runs is None:
            self._runs = self._store.list_runs()
        return [r for r in self._runs if (kind is None or r.kind == kind) and (model is None or r.model == model)
                and (status is None or r.status == status)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _pairwise_baseline(samples: list[tuple[str, dict[str, Any]]]) -> str | None:
    counts = Counter(p.get("generator_1") for _, p in samples if p.get("generator_1"))
    return counts.most_common(1)[0][0] if counts else None


def collect_runs(store: ResultsStore, runs: Sequence[str] | None = None, *, include_unfinished: bool = False) -> Collected:
    """``runs``: run ids (or unambiguous prefixes) to cover; ``None``: every finished run in the
    store (every run, whatever its status, with ``include_unfinished``)."""
    if runs is not None:
        ids = []
        for run_id in runs:
            rid = store.get_run(run_id, with_metrics=False).id
            if rid not in ids:
                ids.append(rid)
        wanted = set(ids)
        records = [r for r in store.list_runs() if r.id in wanted]
    else:
        records = [r for r in store.list_runs() if include_unfinished or r.status == "done"]
    out = Collected(records)
    item_sets = store.item_sets([r.id for r in records])  # cached: no samples read
    for r in records:
        baseline = None
        if r.kind == "judge-pairwise" and not schema.comparability_values(r.kind, r.config).get("reference"):
            baseline = _pairwise_baseline(store.item_values(r.id))  # named per item only
        out.provenance[r.id] = provenance(r, baseline=baseline, item_set=item_sets[r.id])
    return out
