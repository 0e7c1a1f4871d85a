"""Files of model responses produced elsewhere, stored as evalkit ``generate`` runs.

Shapes read (a JSON list, JSON Lines, or CSV with a header; the shape is decided once per file):

* the book's ``instruction-data-with-response.json``: ``instruction``, ``input``, ``output``
  (the reference) and ``model_response``;
* evalkit's own exports of generate runs (``runs export --format jsonl`` or ``csv``): ``response``;
* AlpacaEval's outputs and ``model_outputs.json``: ``instruction``, ``output`` (the model's
  answer), ``generator`` and optionally ``dataset``; there is no reference.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import InputError
from evalkit.interop._records import read_records, require_text
from evalkit.interop.alpaca_eval import split_alpaca_instruction
from evalkit.items import instruction_item_id
from evalkit.store import Metric, ResultsStore

RESPONSES = (
    "model responses: records with instruction and model_response (the book's shape), response (evalkit's), "
    "or output plus generator (AlpacaEval's model_outputs.json)"
)
#: Response fields in the order they are looked for.
RESPONSE_FIELDS = ("model_response", "response", "output")


def _response_field(records: list[dict[str, Any]], path: Path) -> str:
    for key in RESPONSE_FIELDS[:2]:
        if any(key in r for r in records):
            return key
    if any("generator" in r for r in records) and any("output" in r for r in records):
        return "output"
    keys = ", ".join(sorted(records[0])[:8])
    hint = " (this looks like AlpacaEval annotations: use `evalkit import alpaca-eval`)" if "preference" in records[0] else ""
    raise InputError(f"no response field in the records (found: {keys}); expected {RESPONSES}{hint}", path=path)


def read_responses(path: str | Path) -> tuple[list[dict[str, Any]], str]:
    """Records with ``instruction``, ``input``, ``output`` (reference, may be ""), ``response``,
    ``generator`` and ``dataset`` (None when absent), and the field that held the response."""
    path = Path(path)
    records = read_records(path, expected=RESPONSES, empty_cell="")  # an empty response is a response
    field = _response_field(records, path)
    out = []
    for index, record in enumerate(records):
        response = require_text(record, field, path=path, index=index, expected=f"the model's response ({field})")
        reference = "" if field == "output" else require_text(record, "output", path=path, index=index, expected="the reference output", default="")
        generator = record.get("generator")
        if generator is not None and not isinstance(generator, str):
            raise InputError(f"is {type(generator).__name__}, expected the model's name", path=path, record=index, field="generator")
        instruction = require_text(record, "instruction", path=path, index=index, expected="the instruction")
        input_text = require_text(record, "input", path=path, index=index, expected="the input", default="")
        if field == "output":  # AlpacaEval's shape: evalkit's exports append the input to the instruction
            instruction, input_text = split_alpaca_instruction(record, instruction)
        out.append(
            {
                "instruction": instruction,
                "input": input_text,
                "output": reference,
                "response": response,
                "generator": generator,
                "dataset": record.get("dataset") if isinstance(record.get("dataset"), str) else None,
            }
        )
    return out, field


def import_responses(store: ResultsStore, path: str | Path, *, name: str | None = None) -> str:
    """Store a file of responses as a ``generate`` run (model = ``name`` or the file's
    ``generator``); returns the run id. The same file under the same name is imported once.
    ``avg_length`` is in characters, as AlpacaEval measures it.

    An instruction (with its input) that appears twice is one item: the first record is kept
    and the others are reported on stderr.
    """
    path = Path(path)
    records, field = read_responses(path)
    generators = {r["generator"] for r in records if r["generator"]}
    if name is None:
        if len(generators) != 1:
            found = f"{len(generators)} generators ({', '.join(sorted(generators)[:5])})" if generators else "no generator field"
            raise InputError(f"{found}; pass --name to say which model wrote these responses", path=path)
        name = next(iter(generators))
    config = {
        "source": "responses-file",
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "response_field": field,
        "eval_set": f"file:{path.name}",  # the file is the eval set; AlpacaEval's sub-datasets stay per record
    }
    existing = store.find_run("generate", name, config)
    if existing is not None:
        return existing.id
    samples: dict[str, dict[str, Any]] = {}
    duplicates = []
    for index, record in enumerate(records):
        item_id = instruction_item_id(record["instruction"], record["input"])
        if item_id in samples:
            duplicates.append(index)
            continue
        # prompt/tokens/seconds are unknown for responses generated elsewhere
        samples[item_id] = {**record, "generator": name, "prompt": None, "tokens": None, "seconds": None}
    if duplicates:
        print(
            f"evalkit: {path}: {'record' if len(duplicates) == 1 else 'records'} {', '.join(map(str, duplicates[:10]))}"
            f"{' ...' if len(duplicates) > 10 else ''} {'repeats' if len(duplicates) == 1 else 'repeat'} an earlier"
            " instruction and input; kept the first of each",
            file=sys.stderr,
        )
    n = len(samples)
    metrics = {
        # no tokens_per_second: generation speed is unknown for responses made elsewhere
        "n": Metric(float(n), None, n),
        "avg_length": Metric(float(np.mean([len(s["response"]) for s in samples.values()])), None, n),
    }
    checked = store.check_run("generate", name, config, list(samples.items()), metrics, source=path)
    with store.start_run("generate", name, config, model_path=str(path)) as run:
        run.add_samples(checked)
        run.log_metrics(metrics)
    return run.id
