"""`evalkit runs export` / `runs import`: a run as a file.

Formats are listed by name in :data:`EXPORT_FORMATS`: evalkit's own (json, jsonl, csv, table)
here, the interoperability formats (AlpacaEval, Chatbot Arena, lm-eval) from
:mod:`evalkit.interop.exports`, which does not import this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.interop.exports import INTEROP_FORMATS
from evalkit.output import print_rows, to_csv, write_text as _write_text
from evalkit.store import ResultsStore

# name -> function(store, run_id, out) -> path written (None when printed to stdout)
Exporter = Callable[[ResultsStore, str, "Path | None"], "Path | None"]


def _flatten(payload: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def export_json(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    doc = store.export_run(run_id)
    return _write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", out, f"{doc['run']['id']}.json")


def export_jsonl(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    run_id = store.get_run(run_id, with_metrics=False).id
    lines = [json.dumps({"run_id": run_id, "item_id": i, **p}, ensure_ascii=False) for i, p in store.samples(run_id)]
    return _write_text("".join(line + "\n" for line in lines), out, f"{run_id}.jsonl")


def export_csv(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    run_id = store.get_run(run_id, with_metrics=False).id
    rows = [{"item_id": i, **_flatten(p)} for i, p in store.samples(run_id)]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return _write_text(to_csv(rows, columns or ["item_id"]), out, f"{run_id}.csv")


def export_table(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    record = store.get_run(run_id)
    rows = [{"metric": n, "value": m.value, "stderr": m.stderr, "n": m.n} for n, m in record.metrics.items()]
    if out is not None:
        return _write_text(to_csv(rows, ["metric", "value", "stderr", "n"]), out, f"{record.id}-metrics.csv")
    print_rows(rows, "table", columns=["metric", "value", "stderr", "n"], title=f"{record.id} ({record.kind}, {record.model})")
    return None


EXPORT_FORMATS: dict[str, Exporter] = {
    "json": export_json,
    "jsonl": export_jsonl,
    "csv": export_csv,
    "table": export_table,
    **INTEROP_FORMATS,
}


def export_run(store: ResultsStore, run_id: str, fmt: str, out: Path | None = None) -> Path | None:
    try:
        exporter = EXPORT_FORMATS[fmt]
    except KeyError:
        raise EvalkitError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}") from None
    return exporter(store, run_id, out)


def import_run_file(store: ResultsStore, path: Path) -> str:
    from evalkit.records import read_json_document

    doc = read_json_document(path, expected="an evalkit run export (`evalkit runs export ID --format json`)")
    return store.import_run(doc, source=str(path))

