"""Which runs are compared, and whether they may be: never mix numbers that are not comparable.

A model's run for a mode is its latest ``done`` run of that kind. Two runs are comparable when
the settings that change the numbers are equal (read from the run's ``config``: eval set, judge
model and digest, prompt template hash, reference, few-shot, lm-eval version...) and, on the items
both have, what each item was measured against is the same (the rendered MMLU prompt and gold
letter, the judge's reference output). Only items both runs have are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evalkit.store import ResultsStore, RunRecord

# Settings that make two runs of a kind measure different things. A key absent from both
# configs is fine; present in one only, or with different values, refuses the comparison.
COMPARABLE_CONFIG = {
    "mmlu": ("eval_set", "data", "num_fewshot", "template_hash", "lm_eval_version"),
    "judge-score": ("eval_set", "judge_model", "judge_digest", "template_hash", "options"),
    "judge-pairwise": (
        "eval_set", "judge_model", "judge_digest", "template_hash", "options", "reference", "order", "order_seed", "verdict",
    ),
}

# Settings stored as a description: only these parts of it matter (where the MMLU data came
# from and its checksum, not the folder it sat in; which reference, not a hash over the items
# judged, since runs are compared on the items both have and each item's reference is checked).
_SETTING_PARTS = {"data": ("source", "sha256"), "reference": ("source",)}


def _setting(config: dict[str, Any], key: str) -> Any:
    value = config.get(key)
    if isinstance(value, dict) and key in _SETTING_PARTS:
        return {part: value.get(part) for part in _SETTING_PARTS[key]}
    return value


# Per-item fields that must agree for a paired comparison to be meaningful.
COMPARABLE_PAYLOAD = {
    "mmlu": (("prompt", "prompts (different few-shot examples or template)"), ("gold", "gold answers (different data)")),
    "judge-score": (("reference", "reference outputs"),),
    "judge-pairwise": (("output_1", "reference outputs"), ("generator_1", "reference models")),
}


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
    """Two runs and the items both have, in run A's order."""

    run_a: RunRecord
    run_b: RunRecord
    item_ids: list[str]
    payloads_a: list[dict[str, Any]]
    payloads_b: list[dict[str, Any]]
    only_a: int = 0
    only_b: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> dict[str, str]:
        return {"a": self.run_a.id, "b": self.run_b.id}


def latest_done_run(store: ResultsStore, kind: str, model: str, *, exclude: set[str] = frozenset()) -> RunRecord | None:
    runs = [r for r in store.list_runs(kind=kind, model=model, status="done") if r.id not in exclude]
    return max(runs, key=lambda r: (r.finished_at or r.created_at, r.created_at)) if runs else None


def config_differences(kind: str, run_a: RunRecord, run_b: RunRecord) -> list[str]:
    out = []
    for key in COMPARABLE_CONFIG.get(kind, ()):
        value_a, value_b = _setting(run_a.config, key), _setting(run_b.config, key)
        if value_a != value_b:
            out.append(f"{key} differs ({value_a!r} in {run_a.id} vs {value_b!r} in {run_b.id})")
    return out


def pair_runs(store: ResultsStore, kind: str, run_a: RunRecord, run_b: RunRecord) -> PairedRuns:
    """The items both runs have, after checking the runs measure the same thing."""
    differences = config_differences(kind, run_a, run_b)
    if differences:
        raise NotComparable("; ".join(differences))
    samples_a = dict(store.samples(run_a.id))
    samples_b = dict(store.samples(run_b.id))
    empty = [run.id for run, samples in ((run_a, samples_a), (run_b, samples_b)) if not samples]
    if empty:
        raise NotComparable(
            f"run {' and '.join(empty)} has no per-item samples (aggregate results only, e.g. an imported "
            "results file): a paired comparison needs the items"
        )
    common = [item for item in samples_a if item in samples_b]
    if not common:
        raise NotComparable(
            f"no items in common ({run_a.id} has {len(samples_a)}, {run_b.id} has {len(samples_b)}): different eval sets"
        )
    payloads_a = [samples_a[i] for i in common]
    payloads_b = [samples_b[i] for i in common]
    for name, what in COMPARABLE_PAYLOAD.get(kind, ()):
        values_a = [p.get(name) for p in payloads_a]
        values_b = [p.get(name) for p in payloads_b]
        if values_a == values_b:  # the usual case, checked in one comparison of two lists
            continue
        differing = [item for item, va, vb in zip(common, values_a, values_b) if va != vb]
        if differing:
            raise NotComparable(
                f"different {what} on {len(differing)} of {len(common)} common items "
                f"(field {name!r}, e.g. item {differing[0]})"
            )
    paired = PairedRuns(
        run_a,
        run_b,
        common,
        payloads_a,
        payloads_b,
        only_a=len(samples_a) - len(common),
        only_b=len(samples_b) - len(common),
    )
    if paired.only_a or paired.only_b:
        paired.notes.append(
            f"compared on the {len(common)} items both have ({paired.only_a} only in A, {paired.only_b} only in B)"
        )
    return paired


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
    """Each model's latest done run of ``kind``, paired; ``exclude_a``/``exclude_b``: run ids to skip.

    Raises :class:`NoRuns` when neither model has such a run, :class:`NotComparable` (naming the
    runs) when only one has or the two cannot be compared.
    """
    run_a = latest_done_run(store, kind, model_a, exclude=exclude.get("exclude_a", set()))
    run_b = latest_done_run(store, kind, model_b, exclude=exclude.get("exclude_b", set()))
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
