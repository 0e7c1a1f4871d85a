"""Reading interoperability files of records (a JSON list, JSON Lines or CSV) with errors that
name file, line, record and field.

Every interoperability reader starts here, so a malformed file gets the same kind of message
whichever format it was meant to be. JSON files are read by :func:`evalkit.records.read_json_records`.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from evalkit.errors import InputError
from evalkit.records import read_json_records, read_text


def require_text(record: dict[str, Any], key: str, *, path: Path, index: int, expected: str, default: str | None = None) -> str:
    """``record[key]`` as a string, or an error naming file, record and field."""
    if key not in record or record[key] is None:
        if default is not None:
            return default
        raise InputError(f"missing; expected {expected}", path=path, record=index, field=key)
    value = record[key]
    if not isinstance(value, str):
        raise InputError(f"is {type(value).__name__}, expected a string ({expected})", path=path, record=index, field=key)
    return value


def is_missing_number(value: Any) -> bool:
    """None or NaN: how AlpacaEval files and pandas write 'no value'."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def read_csv_records(path: str | Path, *, expected: str, empty: str | None = None) -> list[dict[str, Any]]:
    """The rows of a CSV file with a header; empty cells become ``empty`` (None: as a missing
    JSON field; "" where an empty text is a value, such as an empty model response).

    The csv module is strict here: by default it reads an unterminated quote as one cell that runs
    to the end of the file, silently gluing every later row into one garbled record. A row with
    more or fewer cells than the header is refused for the same reason.
    """
    path = Path(path)
    text = read_text(path, expected=expected)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    try:
        for cells in reader:
            if not cells:
                continue  # a blank line, as csv.DictReader skips it
            if header is None:
                header = cells
                continue
            if len(cells) != len(header):
                raise InputError(
                    f"line {reader.line_num}: {len(cells)} cells where the header has {len(header)} "
                    f"(a stray comma or quote?); expected {expected}",
                    path=path, record=len(rows),
                )
            rows.append({k: (v if v != "" else empty) for k, v in zip(header, cells)})
    except csv.Error as exc:
        raise InputError(
            f"line {reader.line_num}: not valid CSV ({exc}; an unterminated quote?); expected {expected}",
            path=path, record=len(rows),
        ) from None
    if not rows:
        raise InputError(f"no rows; expected {expected}", path=path)
    return rows


def read_records(path: str | Path, *, expected: str, empty_cell: str | None = None) -> list[dict[str, Any]]:
    """Records of a ``.csv`` file (empty cells become ``empty_cell``), or of a JSON list / JSON
    Lines file (any other name). These formats come from pandas-based tools (AlpacaEval, Arena's
    notebooks), which write "no value" as NaN: it is read as null; Infinity is refused."""
    if Path(path).suffix.lower() == ".csv":
        return read_csv_records(path, expected=expected, empty=empty_cell)
    return [record.value for record in read_json_records(path, expected=expected, nan_as_null=True)]
