"""Reading files of JSON records: a JSON list, or JSON Lines (one record a line).

Every reader of such files (instruction data, preference data, eval sets, AlpacaEval and Arena
imports) goes through :func:`read_json_records`, so they all accept the same two layouts, skip the
same blank lines and name the file and line of a malformed record the same way. What a record must
contain is the caller's business.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from evalkit.errors import InputError


class JsonRecord(NamedTuple):
    """One record of a file and where it was."""

    index: int  # position among the file's records, from 0
    line: int | None  # JSON Lines: the line it is on, from 1; None for an element of a JSON list
    value: Any

    @property
    def label(self) -> int | str:
        """How an error names this record: its index, plus its line in a JSON Lines file."""
        return self.index if self.line is None else f"{self.index} (line {self.line})"


class JsonSyntaxError(InputError):
    """A file of records that is not valid JSON (or a line that is not).

    Carries the place so a caller can word the error its own way: ``index`` is the record the bad
    JSON Lines line would have been (None when a JSON list as a whole does not parse), ``line`` and
    ``column`` are 1-based positions in the file, ``reason`` is the JSON parser's message.
    """

    def __init__(self, message: str, *, path: object, index: int | None, line: int, column: int, reason: str):
        super().__init__(message, path=path)
        self.index = index
        self.line = line
        self.column = column
        self.reason = reason


def _read_text(path: Path, shown: object, expected: str) -> str:
    """A file's UTF-8 text, or an :class:`InputError` that says why it cannot be had."""
    wanted = f"; expected {expected}"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=shown) from None
    except IsADirectoryError:
        raise InputError(f"is a folder; expected a file of {expected}", path=shown) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start}){wanted} as JSON", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path=shown) from None


def read_json_document(path: str | Path, *, expected: str | None = None) -> Any:
    """One JSON document (a key, a results file, an export), with the same errors as
    :func:`read_json_records`; the caller checks what the document holds."""
    path = Path(path)
    text = _read_text(path, path, expected or "a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(
            f"line {exc.lineno}: not valid JSON ({exc.msg})" + (f"; expected {expected}" if expected else ""),
            path=path, index=None, line=exc.lineno, column=exc.colno, reason=exc.msg,
        ) from None


def read_json_records(
    path: str | Path,
    *,
    expected: str | None = None,
    objects_only: bool = True,
    shown_as: object = None,
) -> list[JsonRecord]:
    """The records of a JSON list (the file starts with ``[``) or of a JSON Lines file.

    Blank lines between JSON Lines records are skipped. An unreadable, non-UTF-8 or empty file, a
    file with no records and malformed JSON (:class:`JsonSyntaxError`) are :class:`InputError`\\ s;
    so is a record that is not a JSON object unless ``objects_only`` is false (for callers that
    check each record themselves, e.g. to skip bad ones). ``expected`` says what the file should
    hold ("AlpacaEval annotations", ...) and ends each message; ``shown_as`` is what messages call
    the file (default: ``path``; e.g. the URL a cached file came from).
    """
    path = Path(path)
    shown = path if shown_as is None else shown_as
    wanted = f"; expected {expected}" if expected else ""
    text = _read_text(path, shown, expected or "records")
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"empty file{wanted}", path=shown)
    if stripped[0] == "[":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JsonSyntaxError(
                f"line {exc.lineno}: not valid JSON ({exc.msg}){wanted}",
                path=shown, index=None, line=exc.lineno, column=exc.colno, reason=exc.msg,
            ) from None
        records = [JsonRecord(index, None, value) for index, value in enumerate(values)]
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(JsonRecord(len(records), lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise JsonSyntaxError(
                    f"line {lineno}: not valid JSON ({exc.msg}); expected {expected or 'records'} as a JSON list or JSON Lines",
                    path=shown, index=len(records), line=lineno, column=exc.colno, reason=exc.msg,
                ) from None
    if objects_only:
        for record in records:
            if not isinstance(record.value, dict):
                raise InputError(
                    f"is a JSON {type(record.value).__name__}, not an object{wanted}", path=shown, record=record.index
                )
    if not records:
        raise InputError(f"no records{wanted}", path=shown)
    return records
