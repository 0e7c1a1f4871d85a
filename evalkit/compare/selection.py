"""Which runs are compared, and whether they may be: never mix numbers that are not comparable.

A model's run for a mode is the one the leaderboard shows (:func:`evalkit.selection.pick_runs`).
Two runs are comparable when the settings that change the numbers are equal
(:data:`evalkit.schema.COMPARABILITY`) and, on the items
both have, what each item was measured against is the same (the rendered MMLU prompt and gold
letter, the judge's reference output). Only items both runs have are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit import schema
from evalkit.selection import config_differences, pick_runs
from evalkit.store import ResultsStore, RunRecord


class NoRuns(Exception):
    """Neither model has results of this mode: the mode is left out unless asked for."""


class NotComparable(Exception):
    """Raised inside the compare package; becomes a refused row with this reason."""

    def __init__(self, reason: str, *, runs: dict[str, str] | None = None, detail: dict | None = None):
        super().__init__(reason)
        self.runs = runs or {}
        self.detail = detail


@dataclass
class PairedRuns:
    """Two runs and the items both have, in run A's order. Payloads hold the fields comparisons
    use (:meth:`evalkit.store.ResultsStore.item_values`), not the texts."""

    run_a: RunRecord
    run_b: RunRecord
    item_ids: list[str]
    payloads_a: list[dict[str, Any]]
    payloads_b: list[dict[str, Any]]
    only_a: int = 0
    only_b: int = 0
    notes: list[str] = field(default_factory=list)
    # (side, field) -> that run's whole column, when both runs have the same items in the same
    # order (then a run's column is the paired column, and is shared by every pair it is in)
    run_column: Callable[[str, str], list[Any]] | None = field(default=None, repr=False)

    @property
    def runs(self) -> dict[str, str]:
        return {"a": self.run_a.id, "b": self.run_b.id}

    def column(self, side: str, name: str) -> list[Any]:
        """``payload.get(name)`` of every paired item of run ``side`` ("a" or "b"), in item order."""
        if self.run_column is not None:
            return self.run_column(side, name)
        return [p.get(name) for p in (self.payloads_a if side == "a" else self.payloads_b)]


def picked_runs(store: ResultsStore, kind: str, *, exclude: set[str] = frozenset()) -> dict[str, RunRecord]:
    """model -> the run that stands for it among the finished runs of ``kind`` (the shared
    selection of :mod:`evalkit.selection`, so the leaderboard shows the same run)."""
    def pick() -> dict[str, RunRecord]:
        runs = [r for r in store.list_runs(kind=kind, status="done") if r.id not in exclude]
        digests = {run_id: digest for run_id, (_, digest) in store.item_sets([r.id for r in runs]).items()}
        return pick_runs(runs, digest_of=lambda r: digests[r.id]).runs  # cached item sets: no samples read

    return memoized(store, ("picked", kind, frozenset(exclude)), pick)


def pair_runs(store: ResultsStore, kind: str, run_a: RunRecord, run_b: RunRecord) -> PairedRuns:
    """The items both runs have, after checking the runs measure the same thing."""
    differences = config_differences(run_a, run_b)
    if differences:
        raise NotComparable("; ".join(differences))
    # each item's compared fields (texts as digests), cached per run: no sample is read
    ids_a, all_a = _run_items(store, run_a)
    ids_b, all_b = _run_items(store, run_b)
    empty = [run.id for run, ids in ((run_a, ids_a), (run_b, ids_b)) if not ids]
    if empty:
        raise NotComparable(
            f"run {' and '.join(empty)} has no per-item samples (aggregate results only, e.g. an imported "
            "results file): a paired comparison needs the items"
        )
    run_column = None
    if ids_a == ids_b:  # the usual case (one eval set, one order): the runs' own lists, no lookups
        common, payloads_a, payloads_b = ids_a, all_a, all_b

        def run_column(side: str, name: str) -> list[Any]:
            return _run_column(store, run_a if side == "a" else run_b, name)
    else:
        samples_a, samples_b = dict(zip(ids_a, all_a)), dict(zip(ids_b, all_b))
        common = [item for item in ids_a if item in samples_b]
        if not common:
            raise NotComparable(
                f"no items in common ({run_a.id} has {len(samples_a)}, {run_b.id} has {len(samples_b)}): different eval sets"
            )
        payloads_a = [samples_a[i] for i in common]
        payloads_b = [samples_b[i] for i in common]
    paired = PairedRuns(
        run_a,
        run_b,
        common,
        payloads_a,
        payloads_b,
        only_a=len(ids_a) - len(common),
        only_b=len(ids_b) - len(common),
        run_column=run_column,
    )
    for name, what in schema.ITEM_COMPARABILITY.get(kind, ()):
        values_a, values_b = paired.column("a", name), paired.column("b", name)
        if values_a == values_b:  # the usual case, checked in one comparison of two lists
            continue
        differing = [item for item, va, vb in zip(common, values_a, values_b) if va != vb]
        if differing:
            raise NotComparable(
                f"different {what} on {len(differing)} of {len(common)} common items "
                f"(field {name!r}, e.g. item {differing[0]})"
            )
    if paired.only_a or paired.only_b:
        paired.notes.append(
            f"compared on the {len(common)} items both have ({paired.only_a} only in A, {paired.only_b} only in B)"
        )
    return paired


def _run_items(store: ResultsStore, run: RunRecord) -> tuple[list[str], list[dict[str, Any]]]:
    """A run's item ids and item values, split once per report (every pair with the run reads them)."""
    def split() -> tuple[list[str], list[dict[str, Any]]]:
        values = store.item_values(run.id)
        return [item for item, _ in values], [payload for _, payload in values]

    return memoized(store, ("items", run.id), split)


def _run_column(store: ResultsStore, run: RunRecord, name: str) -> list[Any]:
    return memoized(store, ("column", run.id, name), lambda: [p.get(name) for p in _run_items(store, run)[1]])


def memoized(store: ResultsStore, key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()``, or its earlier result (or exception) for ``key`` when ``store`` keeps a
    memo (the report's view of the store, which compares many pairs of the same runs); a plain
    store computes every time."""
    memo = getattr(store, "memo", None)
    if memo is None:
        return compute()
    if key not in memo:
        try:
            memo[key] = (True, compute())
        except (NotComparable, NoRuns) as exc:
            memo[key] = (False, exc)
    ok, value = memo[key]
    if not ok:
        raise value
    return value


def select_pair(store: ResultsStore, kind: str, model_a: str, model_b: str, **exclude: set[str]) -> PairedRuns:
    """Each model's run of ``kind`` (as the leaderboard picks it), paired; ``exclude_a``/``exclude_b``: run ids to skip.

    Raises :class:`NoRuns` when neither model has such a run, :class:`NotComparable` (naming the
    runs) when only one has or the two cannot be compared.
    """
    run_a = picked_runs(store, kind, exclude=exclude.get("exclude_a", set())).get(model_a)
    run_b = picked_runs(store, kind, exclude=exclude.get("exclude_b", set())).get(model_b)
    runs = {side: run.id for side, run in (("a", run_a), ("b", run_b)) if run is not None}
    if not runs:
        raise NoRuns(f"no finished {kind} run for {model_a!r} or {model_b!r}")
    if len(runs) == 1:
        missing = model_a if run_a is None else model_b
        raise NotComparable(f"no finished {kind} run for {missing!r}", runs=runs)
    try:
        return memoized(store, ("pair", kind, run_a.id, run_b.id), lambda: pair_runs(store, kind, run_a, run_b))
    except NotComparable as exc:
        exc.runs = exc.runs or runs
        raise
