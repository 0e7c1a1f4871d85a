"""The items behind every number, packed for the page's drill-down.

Every sample of every run in the report is embedded, so a reader can check any number item
by item. Text is interned: the instruction, the reference and a model's response appear in
several runs (generate, judge-score, judge-pairwise) but are stored once in ``texts``; each
run's samples are rows of values in the order of its ``fields``, text fields holding an
index into ``texts``. Judge raw answers longer than :data:`RAW_LIMIT` characters are cut (the
full text stays in the store: ``evalkit runs export RUN``).
"""

from __future__ import annotations

from typing import Any

from evalkit.report.collect import Collected
from evalkit.store import ResultsStore

RAW_FIELDS = ("raw", "raw_completion")
RAW_LIMIT = 4000

# fields shown first, per kind; the payload's other fields follow in their own order
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "generate": ("instruction", "input", "output", "response"),
    "judge-score": ("instruction", "input", "reference", "response", "score", "status", "raw"),
    "judge-pairwise": ("instruction", "input", "output_1", "generator_1", "output_2", "generator_2", "preference", "status", "raw_completion"),
    "mmlu": ("subject", "category", "question", "choices", "gold", "pred", "correct"),
    "human": ("instruction", "input", "model_a", "response_a", "model_b", "response_b", "outcome", "rater", "comment"),
    "arena": ("model", "rating", "ci_low", "ci_high", "battles", "wins", "losses", "ties"),
    "finetune": ("step", "epoch", "tokens_seen", "train_loss", "val_loss"),
}
# the field that says how an item went, shown in the item list
VERDICT_FIELD = {
    "judge-score": "score",
    "judge-pairwise": "preference",
    "mmlu": "correct",
    "human": "outcome",
    "generate": "tokens",
    "arena": "rating",
    "finetune": "val_loss",
}
# the field that names an item in the item list
TITLE_FIELD = {"mmlu": "question", "arena": "model", "finetune": "step"}


class _Texts:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        index = self._index.get(text)
        if index is None:
            index = self._index[text] = len(self.texts)
            self.texts.append(text)
        return index


def _cut(text: str, run_id: str) -> str:
    if len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}\n… [cut: {len(text) - RAW_LIMIT} more characters; full text: evalkit runs export {run_id}]"


def build_drilldown(store: ResultsStore, collected: Collected, *, setup_letter: dict[str, str] | None = None) -> dict[str, Any]:
    """``{"texts": [...], "runs": {run_id: {...}}}`` for the page (plain JSON data)."""
    texts = _Texts()
    runs: dict[str, Any] = {}
    for record in collected.runs:
        samples = collected.samples(store, record.id)
        fields: list[str] = [f for f in FIELD_ORDER.get(record.kind, ()) if any(f in p for _, p in samples)]
        for _, payload in samples:
            for key in payload:
                if key not in fields:
                    fields.append(key)
        is_text = [all(isinstance(p.get(f), str) or p.get(f) is None for _, p in samples) and any(isinstance(p.get(f), str) for _, p in samples) for f in fields]
        rows = []
        for item_id, payload in samples:
            row: list[Any] = [item_id]
            for field, text in zip(fields, is_text):
                value = payload.get(field)
                if text and value is not None:
                    value = texts(_cut(value, record.id) if field in RAW_FIELDS else value)
                row.append(value)
            rows.append(row)
        prov = collected.provenance[record.id]
        models = {record.model} if record.model else set()
        if record.kind in ("human", "arena"):  # one run covers many models; its own name ("a vs b") is none of them
            models = set()
            for _, p in samples:
                models |= {p[k] for k in ("model_a", "model_b", "model") if isinstance(p.get(k), str)}
        runs[record.id] = {
            "kind": record.kind,
            "model": record.model,
            "models": sorted(models),
            "status": record.status,
            "date": record.created_at,
            "setup": (setup_letter or {}).get(record.id),
            "setup_key": prov.comparability_key(),
            "fields": fields,
            "text": [int(t) for t in is_text],
            "verdict": VERDICT_FIELD.get(record.kind),
            "title": TITLE_FIELD.get(record.kind, "instruction"),
            "items": rows,
        }
    return {"texts": texts.texts, "runs": runs}
