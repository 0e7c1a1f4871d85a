"""The items behind every number, packed for the page's drill-down.

Every sample of every run in the report is embedded, so a reader can check any number item
by item, and the page decodes a run's items only when that run is opened:

* each run's description (kind, models, fields, item count...) goes into the page's metadata;
* each run's samples are one block of rows, values in the order of its ``fields``;
* a text that occurs more than once (an MMLU question, its choices and prompt in every model's
  run; an AlpacaEval instruction and reference output; a response that both a generate and a
  judge run hold, or that several votes show) is stored once in the ``shared`` values, and a text
  field holds its index there; a text that occurs once stays in its run's block as it is (the
  page tells the two apart: a number in a text field is an index);
* the shared values are split into groups by the kind of run that first uses them, so opening
  an AlpacaEval run does not decode the MMLU questions; a run lists the groups it needs;
* numbers are rounded to what the page shows (:data:`DIGITS` decimals; the store keeps them all).

Judge raw answers longer than :data:`RAW_LIMIT` characters are cut (the full text stays in the
store: ``evalkit runs export RUN``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

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


DIGITS = 4  # the page shows numbers to 4 decimals (report.js fmt)
SHARE_MIN_LENGTH = 16  # a shorter text costs less inline than as an index ("A", "stem", "ok")


def _cut(text: str, run_id: str) -> str:
    if len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}\n… [cut: {len(text) - RAW_LIMIT} more characters; full text: evalkit runs export {run_id}]"


def _is_text(value: Any) -> bool:
    """A text field's value: a string, or a list of strings (MMLU's answer choices)."""
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # the page's JSON has no NaN; the store keeps the value
        return round(value, DIGITS)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _rounded_column(column: list[Any]) -> list[Any]:
    """``_rounded`` of every value; numpy for the common shapes (all floats; equal-length lists of
    floats, such as MMLU's log-likelihoods), which is most of the report's numbers."""
    first = column[0] if column else None
    try:
        if all(type(v) is float for v in column):
            return np.round(np.array(column, dtype=float), DIGITS).tolist()
        if type(first) is list and first and all(type(v) is list and len(v) == len(first) for v in column):
            array = np.array(column)
            if array.dtype == np.float64:
                return np.round(array, DIGITS).tolist()
    except (TypeError, ValueError):
        pass
    return [v if type(v) in (int, bool, str) or v is None else _rounded(v) for v in column]


def _fields(kind: str, payloads: list[dict[str, Any]]) -> list[str]:
    """The kind's usual fields first (those present), then the others in their payload order."""
    present: dict[str, None] = {}
    for key_set in {tuple(p) for p in payloads if isinstance(p, dict)}:  # runs have a handful of distinct key layouts
        present.update(dict.fromkeys(key_set))
    return [f for f in FIELD_ORDER.get(kind, ()) if f in present] + [f for f in present if f not in FIELD_ORDER.get(kind, ())]


# A text the store keeps once for all runs is read as its content hash, (_STORED, hash), not as the
# text: equal texts have equal hashes, so the report finds repeats without decoding a text per
# item, and decodes each distinct one once. The marker object keeps the pair from ever equalling
# a text or a list of texts.
_STORED = object()


def _is_stored(value: Any) -> bool:
    return type(value) is tuple and value[0] is _STORED


def _text_column(column: list[Any]) -> bool:
    """Every value a text, a list of texts or a stored text (tuples are only ever stored
    texts: JSON has none), and at least one there; by types first, values only for lists."""
    kinds = set(map(type, column))
    kinds.discard(type(None))
    if not kinds or not kinds <= {str, tuple, list}:
        return False
    return list not in kinds or all(_is_text(v) for v in column if type(v) is list)


def _columns(fields: list[str], stored: list[tuple[str, Any, dict[str, str] | None]]) -> list[list[Any]]:
    """Per field, ``payload.get(field)`` of every sample, a stored text as ``(_STORED, hash)``
    (a comprehension per field, then one pass over the references: at 300k items several times
    faster than a loop over fields per item)."""
    payloads = [p if type(p) is dict else {} for _, p, _ in stored]
    # map(dict.get, ...) runs in C: about twice as fast as a comprehension here
    columns = {name: list(map(dict.get, payloads, repeat(name, len(payloads)))) for name in fields}
    for k, (_, _, refs) in enumerate(stored):
        if refs:
            for name, digest in refs.items():
                if name in columns:
                    columns[name][k] = (_STORED, digest)
    return [columns[name] for name in fields]


@dataclass
class Drilldown:
    """``runs``: each run's description (no items); ``shared``: texts that occur more than once;
    :meth:`blocks` yields each run's rows, one run at a time."""

    runs: dict[str, dict[str, Any]]
    shared: list[Any]
    groups: list[dict[str, Any]]  # {"id", "start", "count"}: consecutive slices of ``shared``
    _collected: Collected = field(repr=False)
    _shared_index: dict[Any, int] = field(repr=False)
    _stored_values: dict[str, Any] = field(repr=False)  # content hash -> text, for every stored text the runs use
    _columns: dict[str, list[list[Any]]] = field(default_factory=dict, repr=False)  # run -> item ids, then its field columns
    _store: ResultsStore | None = field(default=None, repr=False)

    def blocks(self) -> Iterator[tuple[str, list[Any]]]:
        for record in self._collected.runs:
            yield record.id, self._rows(record)

    def _rows(self, record: Any) -> list[Any]:
        """Rows built column by column (a comprehension per field is several times faster than
        a loop over fields per item at 300k items)."""
        meta = self.runs[record.id]
        index, values = self._shared_index, self._stored_values
        built = self._columns.pop(record.id)
        columns: list[list[Any]] = [built[0]]
        for column, name, text in zip(built[1:], meta["fields"], meta["text"]):
            if text:
                if name in RAW_FIELDS:
                    column = [_cut(v, record.id) if type(v) is str else v for v in column]
                get = index.get
                column = [
                    get(v, v) if type(v) is str
                    else v if v is None
                    else (r if (r := get(v)) is not None else values[v[1]]) if type(v) is tuple  # a stored text
                    else get(tuple(v), v)  # a list of texts
                    for v in column
                ]
            else:
                kinds = set(map(type, column))
                if tuple in kinds:  # a stored text in a column of numbers: its value
                    values.update(self._store.shared_values(v[1] for v in column if type(v) is tuple))
                    column = [values[v[1]] if type(v) is tuple else v for v in column]
                if kinds & {float, list, dict}:
                    column = _rounded_column(column)
            columns.append(column)
        return list(map(list, zip(*columns)))


def build_drilldown(store: ResultsStore, collected: Collected, *, setup_letter: dict[str, str] | None = None) -> Drilldown:
    runs: dict[str, Any] = {}
    uses: Counter = Counter()  # text -> occurrences in all runs, in order of first use (gzip then
    first_kind: dict[Any, str] = {}  # sees a question beside its prompt and compresses the repeat)
    distinct_of: dict[str, dict[Any, None]] = {}  # run -> its shareable texts, each once
    columns_of: dict[str, list[list[Any]]] = {}  # kept for the rows
    for record in collected.runs:
        stored = store.samples_with_refs(record.id)  # texts kept once in the store stay hashes
        fields = _fields(record.kind, [p for _, p, _ in stored])
        columns = _columns(fields, stored)
        columns_of[record.id] = [[item_id for item_id, _, _ in stored], *columns]
        is_text = []
        key_columns = []
        for name, column in zip(fields, columns):
            text = _text_column(column)
            is_text.append(text)
            if text and name not in RAW_FIELDS:
                minimum = SHARE_MIN_LENGTH  # shareable: a stored text, a list of texts, a text this long
                key_columns.append([
                    (v if len(v) >= minimum else None) if type(v) is str else v if v is None or type(v) is tuple else tuple(v)
                    for v in column
                ])
        # item by item (not field by field), so an item's question, choices and prompt sit together
        keys = [k for row in zip(*key_columns) for k in row if k is not None]
        uses.update(keys)
        distinct_of[record.id] = dict.fromkeys(keys)
        first_kind.update(dict.fromkeys(distinct_of[record.id].keys() - first_kind.keys(), record.kind))
        del keys, key_columns
        prov = collected.provenance[record.id]
        models = {record.model} if record.model else set()
        if record.kind in ("human", "arena"):  # one run covers many models; its own name ("a vs b") is none of them
            models = set()
            for _, p, _ in stored:
                if type(p) is dict:
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
            "n": len(stored),
            "shared": [],
        }
        del stored
    # the stored texts the rows use (one in a column of numbers is fetched when its rows are built)
    values = store.shared_values(k[1] for k in first_kind if type(k) is tuple and k[0] is _STORED)
    # grouped by the kind that first uses them, each group in order of first use
    by_kind: dict[str, list[Any]] = {}
    for key, count in uses.items():
        if count > 1:
            by_kind.setdefault(first_kind[key], []).append(key)
    del uses
    shared: list[Any] = []
    index: dict[Any, int] = {}
    groups = []
    group_of_kind = {}
    for kind, keys in by_kind.items():
        group_of_kind[kind] = f"report-shared-{len(groups)}"
        groups.append({"id": group_of_kind[kind], "start": len(shared), "count": len(keys)})
        for key in keys:
            index[key] = len(shared)
            shared.append(values[key[1]] if _is_stored(key) else key if isinstance(key, str) else list(key))
    keys_of_group = {kind: set(keys) for kind, keys in by_kind.items()}
    for record in collected.runs:  # the groups each run's shared texts come from (set operations in C)
        distinct = distinct_of.pop(record.id)
        runs[record.id]["shared"] = sorted(group_of_kind[kind] for kind, keys in keys_of_group.items() if not keys.isdisjoint(distinct))
    return Drilldown(runs, shared, groups, collected, index, values, columns_of, store)
