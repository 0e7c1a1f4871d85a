"""`evalkit runs export --format alpaca-eval | arena | lm-eval`: listed in :data:`INTEROP_FORMATS`,
which :data:`evalkit.runs_export.EXPORT_FORMATS` includes.

Each exporter checks the run's kind and says which kinds its format takes.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.output import write_text as _write_text
from evalkit.store import ResultsStore


def export_alpaca_eval(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    """judge-pairwise -> annotations.json; generate -> model_outputs.json (AlpacaEval's layouts)."""
    from evalkit.interop.alpaca_eval import annotation_records, model_output_records

    kind = store.get_run(run_id, with_metrics=False).kind
    if kind == "generate":
        records, default_name = model_output_records(store, run_id), "model_outputs.json"
    else:
        records, default_name = annotation_records(store, run_id), "annotations.json"
    return _write_text(json.dumps(records, ensure_ascii=False, indent=2) + "\n", out, default_name)


def export_arena(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    """human / judge-pairwise -> Arena battles: CSV when --out ends in .csv, else JSON Lines."""
    from evalkit.interop.arena import battles_from_run, battles_text

    battles = battles_from_run(store, run_id)
    as_csv = out is not None and out.suffix.lower() == ".csv"
    return _write_text(battles_text(battles, as_csv=as_csv), out, "battles.jsonl")


def export_lm_eval(store: ResultsStore, run_id: str, out: Path | None) -> Path | None:
    """mmlu -> lm-eval's results JSON."""
    from evalkit.interop.lm_eval_format import results_document

    doc = results_document(store, run_id)
    return _write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", out, "results.json")


INTEROP_FORMATS = {"alpaca-eval": export_alpaca_eval, "arena": export_arena, "lm-eval": export_lm_eval}
