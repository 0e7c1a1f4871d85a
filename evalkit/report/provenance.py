"""Where a number came from, and which numbers may be ranked together.

Every run's ``config`` records what makes its numbers comparable (README: eval set, judge
model and digest, prompt template hash, few-shot count, lm-eval version). The producers of
runs (generate, mmlu, judge, importers) are separate modules, so the keys are looked up
through a short list of the names they use; the first present wins.

Two runs are *comparable* when they agree on every field in :data:`COMPARABILITY_FIELDS`
that applies to their kind and were scored on the same set of items.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evalkit.store import RunRecord, content_hash
from evalkit.store_content import item_set_hash

# provenance field -> config keys that may hold it, in order of preference
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "eval_set": ("eval_set", "eval_set_name", "dataset", "data", "tasks", "task"),
    "eval_set_hash": ("eval_set_hash", "eval_set_sha256", "data_hash", "data_sha256", "records_hash"),
    "judge_model": ("judge_model", "judge", "annotator"),
    "judge_digest": ("judge_digest", "judge_model_digest", "digest"),
    "template_hash": ("template_hash", "prompt_template_hash", "prompt_hash", "template"),
    "num_fewshot": ("num_fewshot", "fewshot", "few_shot", "n_shot"),
    "lm_eval_version": ("lm_eval_version", "lm_eval"),
    "baseline": ("baseline", "reference", "reference_model", "generator_1"),
    "limit": ("limit",),
    "order": ("order",),
}

# which fields must agree for numbers of a run kind to be ranked in one column
COMPARABILITY_FIELDS: dict[str, tuple[str, ...]] = {
    "mmlu": ("eval_set", "eval_set_hash", "num_fewshot", "template_hash", "lm_eval_version", "limit"),
    "judge-score": ("eval_set", "eval_set_hash", "judge_model", "judge_digest", "template_hash"),
    "judge-pairwise": ("eval_set", "eval_set_hash", "judge_model", "judge_digest", "template_hash", "baseline", "order"),
    "generate": ("eval_set", "eval_set_hash", "template_hash"),
    "arena": (),
    "human": (),
    "finetune": (),
}

FIELD_LABELS = {
    "eval_set": "eval set",
    "eval_set_hash": "eval set hash",
    "judge_model": "judge model",
    "judge_digest": "judge digest",
    "template_hash": "prompt template hash",
    "num_fewshot": "few-shot",
    "lm_eval_version": "lm-eval version",
    "baseline": "baseline",
    "limit": "limit per subject",
    "order": "answer order",
    "items": "items",
}


def config_value(config: dict[str, Any], field: str) -> Any:
    for key in CONFIG_KEYS.get(field, (field,)):
        value = config.get(key)
        if value not in (None, ""):
            return value
    return None


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
    eval_set: Any = None
    eval_set_hash: Any = None
    judge_model: Any = None
    judge_digest: Any = None
    template_hash: Any = None
    num_fewshot: Any = None
    lm_eval_version: Any = None
    baseline: Any = None
    limit: Any = None
    order: Any = None
    n_items: int = 0
    items_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def comparability_key(self) -> str:
        """Equal keys = numbers that may be ranked in one column."""
        fields = COMPARABILITY_FIELDS.get(self.kind, ())
        return content_hash([self.kind, [[f, getattr(self, f)] for f in fields], self.items_hash], length=12)

    def setup_description(self) -> list[tuple[str, str]]:
        """(label, value) pairs of the comparability fields that are known, for the page."""
        out = []
        for f in COMPARABILITY_FIELDS.get(self.kind, ()):
            value = getattr(self, f)
            if value is not None:
                # digests are 64 hex digits: 16 tell them apart on the page (the full one is in the run's provenance)
                out.append((FIELD_LABELS[f], _short(value, 17 if f == "judge_digest" else 80)))
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


def items_hash(item_ids: list[str] | set[str]) -> str | None:
    """Identity of the set of items a run scored (order-free)."""
    return item_set_hash(item_ids)


def provenance(
    run: RunRecord, item_ids: list[str] | set[str] = (), *, baseline: str | None = None,
    item_set: tuple[int, str | None] | None = None,
) -> Provenance:
    """``baseline``: the reference generator read from a pairwise run's samples, used when the
    config does not name it (imported AlpacaEval annotations carry it only per item).
    ``item_set``: (count, hash) of the run's items as the store caches them, instead of ``item_ids``."""
    config = run.config or {}
    found = {f: config_value(config, f) for f in CONFIG_KEYS}
    if found["baseline"] is None and run.kind == "judge-pairwise":
        found["baseline"] = baseline
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
        n_items=item_set[0] if item_set is not None else len(item_ids),
        items_hash=item_set[1] if item_set is not None else items_hash(item_ids),
        **found,
    )
