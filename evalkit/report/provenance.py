"""Where a number came from, and the setup it belongs to (which numbers may be ranked together).

The settings that make numbers comparable, and where each kind's producers record them, are
defined once in :mod:`evalkit.schema` (:data:`~evalkit.schema.COMPARABILITY`); setups and the run
that stands for a model come from :mod:`evalkit.selection`, which ``compare`` uses too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evalkit import schema
from evalkit.selection import items_hash, setup_key
from evalkit.store import RunRecord

FIELD_LABELS = {**schema.SETTING_LABELS, "items": "items"}


@dataclass
class Provenance:
    """What a reader needs to trust (or distrust) one run's numbers."""

    run_id: str
    kind: str
    model: str | None
    status: str
    date: str
    finished_at: str | None
    evalkit_version: str | None
    git_commit: str | None
    model_path: str | None
    model_hash: str | None
    settings: dict[str, Any] = field(default_factory=dict)  # the kind's comparability settings
    baseline: Any = None  # judge-pairwise: the reference generator (config, else the items')
    n_items: int = 0
    items_hash: str | None = None
    key: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def comparability_key(self) -> str:
        """Equal keys = numbers that may be ranked in one column."""
        return self.key

    def setup_description(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the comparability settings that are known, for the page."""
        out = []
        for name, value in self.settings.items():
            if value is not None:
                # digests are 64 hex digits: 16 tell them apart on the page (the full one is in the run's provenance)
                out.append((FIELD_LABELS[name], _short(value, 17 if name == "judge_digest" else 80)))
        if self.n_items:
            out.append((FIELD_LABELS["items"], f"{self.n_items} (set {self.items_hash})"))
        return out


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, 24)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provenance(
    run: RunRecord, item_ids: list[str] | set[str] = (), *, baseline: str | None = None,
    item_set: tuple[int, str | None] | None = None,
) -> Provenance:
    """``baseline``: the reference generator read from a pairwise run's samples, shown when the
    config does not name it (it is checked item by item where runs are paired). ``item_set``:
    (count, hash) of the run's items as the store caches them, instead of ``item_ids``."""
    settings = schema.comparability_values(run.kind, run.config)
    n_items, digest = item_set if item_set is not None else (len(item_ids), items_hash(item_ids))
    return Provenance(
        run_id=run.id,
        kind=run.kind,
        model=run.model,
        status=run.status,
        date=run.created_at,
        finished_at=run.finished_at,
        evalkit_version=run.evalkit_version,
        git_commit=run.git_commit,
        model_path=run.model_path,
        model_hash=run.model_hash,
        settings=settings,
        baseline=settings.get("reference") or (baseline if run.kind == "judge-pairwise" else None),
        n_items=n_items,
        items_hash=digest,
        key=setup_key(run, digest=digest),
    )
