"""Which runs may be ranked or compared together, and which run stands for a model.

The one place both questions are answered, so ``compare``, the leaderboard, the report and the
demo always agree:

* two runs are in the same *setup* when the settings that change their numbers are equal
  (:func:`evalkit.schema.comparability_values`) and they scored the same set of items;
* among a kind's runs, the *reference setup* is the one covering the most models (the newest
  on a tie), and a model is represented by its newest run in the best-ranked setup it has a
  run in (:func:`pick_runs`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from evalkit import schema
from evalkit.store import RunRecord, content_hash


def items_hash(item_ids: Iterable[str]) -> str | None:
    """Identity of the set of items a run scored (order-free)."""
    ids = sorted(set(item_ids))
    return content_hash(ids, length=10) if ids else None


def setup_key(run: RunRecord, item_ids: Iterable[str] = (), *, digest: str | None = None) -> str:
    """Equal keys = numbers that may be ranked in one column. ``digest``: the items' hash when
    known (the store caches it per run: ``ResultsStore.item_sets``), instead of the ids."""
    return schema.comparability_key(run.kind, run.config, digest if digest is not None else items_hash(item_ids))


def config_differences(run_a: RunRecord, run_b: RunRecord) -> list[str]:
    """One sentence per comparability setting on which two runs of a kind differ."""
    return [
        f"{name} differs ({a!r} in {run_a.id} vs {b!r} in {run_b.id})"
        for name, a, b in schema.config_differences(run_a.kind, run_a.config, run_b.config)
    ]


@dataclass
class Picked:
    """Each model's run, the setups in reference order and each run's setup key."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    setups: list[str] = field(default_factory=list)  # keys of setups holding a picked run, reference first
    key_of: dict[str, str] = field(default_factory=dict)  # run id -> setup key
    members: dict[str, list[RunRecord]] = field(default_factory=dict)  # setup key -> its runs


def _newest(run: RunRecord) -> tuple[Any, ...]:
    return (run.created_at, run.finished_at or "", run.id)


def pick_runs(
    runs: Iterable[RunRecord], item_ids: Callable[[RunRecord], Iterable[str]] | None = None, *,
    digest_of: Callable[[RunRecord], str | None] | None = None,
) -> Picked:
    """``runs``: runs of one kind (those with a model). ``item_ids(run)``: the items it scored,
    or ``digest_of(run)``: their hash (:func:`items_hash`) when already known."""
    out = Picked()
    by_key: dict[str, list[RunRecord]] = defaultdict(list)
    for run in runs:
        if not run.model:
            continue
        key = setup_key(run, digest=digest_of(run)) if digest_of is not None else setup_key(run, item_ids(run))
        out.key_of[run.id] = key
        by_key[key].append(run)

    def rank(key: str) -> tuple[int, tuple[Any, ...]]:
        return (len({r.model for r in by_key[key]}), max(_newest(r) for r in by_key[key]))

    ordered = sorted(by_key, key=rank, reverse=True)
    for key in ordered:  # reference setup first: a model keeps its run there if it has one
        for run in sorted(by_key[key], key=_newest, reverse=True):
            out.runs.setdefault(run.model, run)
    picked_ids = {r.id for r in out.runs.values()}
    out.setups = [k for k in ordered if any(r.id in picked_ids for r in by_key[k])]
    out.members = dict(by_key)
    return out
