"""Evaluation sets for the judge: instructions with reference outputs.

* ``book-test``: the held-out 10% test split of the fine-tuning data (the book's method),
  through ``finetune.load_records`` and ``finetune.split_records``.
* ``alpaca-eval``: AlpacaEval's 805 instructions with its GPT-4 Turbo reference outputs
  (``gpt4_1106_preview``), from ``$EVALKIT_ALPACA_EVAL`` (a local file) or the hub.
* a JSON or JSONL file of records with ``instruction``, optional ``input``, and ``output``
  (the reference; optional for pairwise runs that take ``--reference``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.assets import resolve_data
from evalkit.errors import InputError
from evalkit.items import instruction_item_id
from evalkit.records import JsonSyntaxError, read_json_records
from evalkit.hashing import content_hash

ALPACA_EVAL_URL = (
    "https://huggingface.co/datasets/tatsu-lab/alpaca_eval/resolve/main/alpaca_eval_gpt4_baseline.json"
)
NAMED = ("book-test", "alpaca-eval")


@dataclass
class EvalSet:
    name: str
    records: list[dict[str, Any]]  # id, instruction, input, output (reference), generator
    source: str

    @property
    def default_mode(self) -> str:
        return "pairwise" if self.name == "alpaca-eval" else "score"

    @property
    def default_order(self) -> str:
        return "random" if self.name == "alpaca-eval" else "swap"

    @property
    def hash(self) -> str:
        return content_hash([[r["id"], r["output"]] for r in self.records])


def read_instruction_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a JSON list or JSONL file, checked field by field (errors name them)."""
    try:
        entries = read_json_records(path, objects_only=False)
    except JsonSyntaxError as exc:
        raise InputError(f"not JSON or JSONL ({exc.reason})", path=path, record=exc.line) from exc
    records = []
    for entry in entries:
        index, row = entry.index, entry.value
        if not isinstance(row, dict):
            raise InputError("record is not an object", path=path, record=index)
        for name in ("instruction", "input", "output", "generator"):
            if row.get(name) is not None and not isinstance(row[name], str):
                raise InputError(f"must be a string, not {type(row[name]).__name__}", path=path, record=index, field=name)
        if not (row.get("instruction") or "").strip():
            raise InputError("missing or empty", path=path, record=index, field="instruction")
        records.append(
            {
                "id": instruction_item_id(row["instruction"], row.get("input") or ""),
                "instruction": row["instruction"],
                "input": row.get("input") or "",
                "output": row.get("output") or "",
                "generator": row.get("generator"),
            }
        )
    return records


def _book_test() -> tuple[list[dict[str, Any]], str]:
    from finetune import BOOK_DATA_URL, load_records, split_records

    # by default the copy shipped with evalkit: the same bytes as BOOK_DATA_URL (sha256-checked),
    # so the book's test split needs no network
    override = os.environ.get("EVALKIT_BOOK_DATA")
    source = override or BOOK_DATA_URL
    records = split_records(load_records(override))["test"]
    return [
        {
            "id": r.get("id") or instruction_item_id(r["instruction"], r.get("input") or ""),
            "instruction": r["instruction"],
            "input": r.get("input") or "",
            "output": r.get("output") or "",
            "generator": None,
        }
        for r in records
    ], str(source)


def load_eval_set(spec: str | os.PathLike[str]) -> EvalSet:
    """``book-test``, ``alpaca-eval`` or a file."""
    name = str(spec)
    if name == "book-test":
        records, source = _book_test()
        return EvalSet(name, records, source)
    if name == "alpaca-eval":
        source = os.environ.get("EVALKIT_ALPACA_EVAL") or ALPACA_EVAL_URL
        return EvalSet(name, read_instruction_file(resolve_data(source)), source)
    path = Path(name)
    if not path.exists():
        raise InputError(f"no such file, and not one of {', '.join(NAMED)}", path=path)
    return EvalSet(f"file:{path.name}", read_instruction_file(path), str(path))
