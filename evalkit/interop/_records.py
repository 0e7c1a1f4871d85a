"""Reading files of records (a JSON list, or JSON Lines) with errors that name file and line.

Every interoperability reader starts here, so a malformed file gets the same kind of message
whichever format it was meant to be.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evalkit.errors import InputError


def read_json_records(path: str | Path, *, expected: str) -> list[dict[str, Any]]:
    """The records of a JSON list or a JSON Lines file.

    ``expected`` says what the file should be ("AlpacaEval annotations", ...) so that a file of
    the wrong kind gets an error naming what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError(f"is a folder; expected a file of {expected}", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason}); expected {expected} as JSON", path=path) from None
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"empty file; expected {expected}", path=path)
    if stripped[0] == "[":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {exc.lineno}: not valid JSON ({exc.msg}); expected {expected}", path=path) from None
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"line {lineno}: not valid JSON ({exc.msg}); expected {expected} as a JSON list or JSON Lines",
                    path=path,
                ) from None
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"is a JSON {type(record).__name__}, not an object; expected {expected}", path=path, record=index
            )
    if not records:
        raise InputError(f"no records; expected {expected}", path=path)
    return records


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
