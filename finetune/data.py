"""Instruction records: loading, validation and the book's train/test/validation split.

A data file is a JSON list or JSON Lines of objects with ``instruction``, ``input`` (may be
empty) and ``output``: the book's ``instruction-data.json``, Stanford Alpaca's
``alpaca_data.json`` or any file of that shape, by path or URL. Every returned record carries
``id`` = :func:`evalkit.items.instruction_item_id`, so results from any file compare item by item.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

from evalkit.assets import BOOK_INSTRUCTION_DATA, embedded_file, resolve_data
from evalkit.errors import InputError
from evalkit.items import instruction_item_id
from evalkit.records import JsonSyntaxError, read_json_records

BOOK_DATA_URL = (
    "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json"
)
FIELDS = ("instruction", "input", "output")
REQUIRED_NONEMPTY = ("instruction", "output")
# the book's split: first 85% train, next 10% test, the remaining 5% validation
SPLIT_FRACTIONS = {"train": 0.85, "test": 0.10}


class InvalidRecordsWarning(UserWarning):
    """Records skipped by ``skip_invalid=True``; the message counts them and names the first."""


def _read(path: Path, label: str) -> list[tuple[object, object]]:
    """``[(record label, value)]`` from a JSON list or a JSON Lines file; the values are checked
    by :func:`validate_record` so that ``skip_invalid`` can drop a non-object too."""
    try:
        records = read_json_records(path, objects_only=False, shown_as=label)
    except JsonSyntaxError as exc:
        if exc.index is None:
            raise InputError(f"not valid JSON ({exc.reason} at line {exc.line}, column {exc.column})", path=label) from exc
        raise InputError(f"not valid JSON ({exc.reason})", path=label, record=f"{exc.index} (line {exc.line})") from exc
    return [(record.label, record.value) for record in records]


def validate_record(value: object, *, path: object, index: object) -> dict:
    """The record as a dict with string fields, or :class:`InputError` naming file, record and field."""
    if not isinstance(value, dict):
        raise InputError(f"expected an object with {', '.join(FIELDS)}, got {type(value).__name__}", path=path, record=index)
    for name in FIELDS:
        if name not in value:
            raise InputError("is missing", path=path, record=index, field=name)
        if not isinstance(value[name], str):
            raise InputError(f"must be a string, not {type(value[name]).__name__}", path=path, record=index, field=name)
    for name in REQUIRED_NONEMPTY:
        if not value[name].strip():
            raise InputError("is empty", path=path, record=index, field=name)
    record = dict(value)
    record["id"] = instruction_item_id(record["instruction"], record["input"])
    return record


def load_records(spec: str | Path | None = None, *, skip_invalid: bool = False) -> list[dict]:
    """Validated records from a file or URL (default: the book's instruction data shipped with evalkit).

    A bad record is an :class:`InputError` naming file, record index and field; with
    ``skip_invalid`` it is dropped and counted in one :class:`InvalidRecordsWarning`.
    """
    if spec is None:  # the copy shipped with evalkit: the same bytes as BOOK_DATA_URL, sha256-checked
        spec = embedded_file(BOOK_INSTRUCTION_DATA)
    path = resolve_data(spec)
    label = str(spec)
    records, errors = [], []
    for index, value in _read(path, label):
        try:
            records.append(validate_record(value, path=label, index=index))
        except InputError as exc:
            if not skip_invalid:
                raise
            errors.append(str(exc))
    if not records:
        raise InputError("no valid records" + (f" ({len(errors)} invalid; first: {errors[0]})" if errors else ""), path=label)
    if errors:
        warnings.warn(
            f"{label}: skipped {len(errors)} invalid record(s); first: {errors[0]}", InvalidRecordsWarning, stacklevel=2
        )
    return records


def split_records(records: list[dict], *, shuffle_seed: int | None = None) -> dict[str, list[dict]]:
    """The book's split: first 85% train, next 10% test, last 5% validation (file order unless
    ``shuffle_seed`` is given, which shuffles a copy first)."""
    records = list(records)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(records)
    train_end = int(len(records) * SPLIT_FRACTIONS["train"])
    test_end = train_end + int(len(records) * SPLIT_FRACTIONS["test"])
    return {"train": records[:train_end], "test": records[train_end:test_end], "val": records[test_end:]}


def select_by_ids(records: list[dict], ids: list[str], *, source: object = None) -> list[dict]:
    """The records with these ids, in the order of ``ids`` (a saved split applied to a data file)."""
    by_id: dict[str, dict] = {}
    for record in records:
        by_id.setdefault(record["id"], record)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise InputError(
            f"{len(missing)} record(s) of the saved split are not in this data file (first id {missing[0]}); "
            "pass the data file the model was trained on",
            path=source,
        )
    return [by_id[i] for i in ids]
