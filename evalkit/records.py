"""Reading files of JSON records: a JSON list, or JSON Lines (one record a line).

Every reader of such files (instruction data, preference data, eval sets, AlpacaEval and Arena
imports) goes through :func:`read_json_records`, so they all accept the same two layouts, skip the
same blank lines and name the file and line of a malformed record the same way. What a record must
contain is the caller's business.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
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


# What evalkit cannot store or trust: a lone UTF-16 surrogate (not encodable as UTF-8), NaN /
# Infinity literals and numbers that overflow to infinity (1e400, or 309+ digits). The parser's
# hooks catch the numbers (see _decode_flagged); surrogates can only come from these escapes
# (the text itself is valid UTF-8), so only text holding one is walked.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # one C-level scan per string, not a Python loop per character


def read_text(path: str | Path, *, expected: str, shown_as: object = None) -> str:
    """A file's UTF-8 text (a leading byte-order mark dropped), or an :class:`InputError` that says
    why it cannot be had: missing, a folder, unreadable, not UTF-8."""
    path = Path(path)
    shown = path if shown_as is None else shown_as
    try:
        # bytes then decode: text mode would turn \r\n and lone \r into \n, even inside a CSV cell
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError("no such file", path=shown) from None
    except IsADirectoryError:
        raise InputError(f"is a folder; expected a file of {expected}", path=shown) from None
    except NotADirectoryError:
        raise InputError(f"a folder on the way is a file; expected {expected}", path=shown) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); expected {expected} as JSON", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path=shown) from None


def json_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line)`` of JSON Lines text.

    Splits on ``\n`` only (a trailing ``\r`` is dropped): ``str.splitlines()`` also breaks at
    U+0085, U+2028 and U+2029, which JSON allows unescaped inside strings and which lm-eval and
    any ``ensure_ascii=False`` writer put there (MMLU's questions hold U+0085).
    """
    for lineno, line in enumerate(text.split("\n"), start=1):
        yield lineno, line.removesuffix("\r")


def _field_name(parts: list[object]) -> str:
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(the value)"


def _untrusted_value(value: Any, *, nan_as_null: bool) -> tuple[str, str] | None:
    """The first value JSON parsed that evalkit must not take: ``(field, why)``; None when clean.

    With ``nan_as_null`` a NaN (how pandas writes "no value") is replaced by None in place.
    Iterative, so a document nested as deeply as the parser allowed cannot overflow the stack.
    """
    stack: list[tuple[Any, list[object]]] = [(value, [])]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str) and _SURROGATE.search(key):
                    return _field_name(where + [key.encode("utf-8", "backslashreplace").decode()]), "a key holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"
                if nan_as_null and isinstance(item, float) and math.isnan(item):
                    node[key] = None
                else:
                    stack.append((item, where + [key]))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if nan_as_null and isinstance(item, float) and math.isnan(item):
                    node[index] = None
                else:
                    stack.append((item, where + [index]))
        elif isinstance(node, float) and not math.isfinite(node):
            return _field_name(where), f"is {node} (NaN, Infinity or a number too large for a float); expected a finite number"
        elif isinstance(node, str) and _SURROGATE.search(node):
            return _field_name(where), "holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text"
    return None


def _label(index: int | None, line: int | None) -> object:
    """How messages name a record: its index, with its line in a JSON Lines file."""
    if index is None:
        return None
    return index if line is None else f"{index} (line {line})"


class _NonFinite(Exception):
    """Raised by the parser's hooks at a NaN, an Infinity or a number too large for a float."""


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NonFinite
    return value


def _non_finite_constant(_literal: str) -> float:  # NaN, Infinity, -Infinity
    raise _NonFinite


def _decode_flagged(text: str, *, shown: object, index: int | None, line: int | None, context: str) -> tuple[Any, bool]:
    """``(value, suspect)``: the parsed value, and whether it may hold what evalkit refuses (then
    :func:`_refuse_untrusted` walks it to name the field). The parser's own hooks see every
    number and constant, and only the text's ``\\u`` escapes are searched for lone surrogates,
    so a clean record costs one C-level parse, not a regex pass over its text (4 s for the 38 MB
    of a full-MMLU lm-eval import) or a Python walk over its values."""
    try:
        value = _decode(text, shown=shown, index=index, line=line, context=context, hooks=True)
    except _NonFinite:
        return _decode(text, shown=shown, index=index, line=line, context=context), True
    return value, "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None


def _decode(text: str, *, shown: object, index: int | None, line: int | None, context: str, hooks: bool = False) -> Any:
    """``json.loads`` with every way it can fail turned into an :class:`InputError` at the file's place."""
    where = f"line {line}: " if line is not None and index is None else ""
    try:
        if hooks:
            return json.loads(text, parse_float=_finite_float, parse_constant=_non_finite_constant)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at_line = line if line is not None else exc.lineno
        raise JsonSyntaxError(
            f"line {at_line}: not valid JSON ({exc.msg}){context}",
            path=shown, index=index, line=at_line, column=exc.colno, reason=exc.msg,
        ) from None
    except RecursionError:
        raise InputError(
            f"{where}nested too deeply to read (thousands of levels of [ or {{){context}", path=shown, record=_label(index, line)
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{where}not a usable JSON value ({exc}){context}", path=shown, record=_label(index, line)) from None


def _refuse_untrusted(value: Any, *, shown: object, index: int | None, line: int | None, nan_as_null: bool, context: str) -> None:
    problem = _untrusted_value(value, nan_as_null=nan_as_null)
    if problem is not None:
        field, why = problem
        at = f"{shown}, line {line}" if line is not None and index is None else shown
        raise InputError(f"{why}{context}", path=at, record=_label(index, line), field=field)


def parse_json(
    text: str, *, shown: object, index: int | None = None, line: int | None = None, expected: str | None = None,
    nan_as_null: bool = False,
) -> Any:
    """One JSON value from ``text`` (a whole file or one JSON Lines line), refused with an
    :class:`InputError` naming ``shown`` (the file), the record ``index``, the ``line`` and the
    field when it is malformed, nested too deeply, holds a lone surrogate, NaN or Infinity (with
    ``nan_as_null``: NaN becomes None, for files written by pandas)."""
    context = f"; expected {expected}" if expected else ""
    value, suspect = _decode_flagged(text, shown=shown, index=index, line=line, context=context)
    if suspect:
        _refuse_untrusted(value, shown=shown, index=index, line=line, nan_as_null=nan_as_null, context=context)
    return value


def read_json_document(path: str | Path, *, expected: str | None = None, nan_as_null: bool = False) -> Any:
    """One JSON document (a key, a results file, an export), with the same errors as
    :func:`read_json_records`; the caller checks what the document holds."""
    path = Path(path)
    text = read_text(path, expected=expected or "a JSON document")
    if not text.strip():
        raise InputError(f"empty file; expected {expected or 'a JSON document'}", path=path)
    return parse_json(text, shown=path, expected=expected, nan_as_null=nan_as_null)


def read_json_records(
    path: str | Path,
    *,
    expected: str | None = None,
    objects_only: bool = True,
    shown_as: object = None,
    nan_as_null: bool = False,
) -> list[JsonRecord]:
    """The records of a JSON list (the file starts with ``[``) or of a JSON Lines file.

    Blank lines between JSON Lines records are skipped. An unreadable, non-UTF-8 or empty file, a
    file with no records, malformed JSON (:class:`JsonSyntaxError`) and values :func:`parse_json`
    refuses are :class:`InputError`\\ s; so is a record that is not a JSON object unless
    ``objects_only`` is false (for callers that check each record themselves, e.g. to skip bad
    ones). ``expected`` says what the file should hold ("AlpacaEval annotations", ...) and ends
    each message; ``shown_as`` is what messages call the file (default: ``path``; e.g. the URL a
    cached file came from).
    """
    path = Path(path)
    shown = path if shown_as is None else shown_as
    wanted = f"; expected {expected}" if expected else ""
    text = read_text(path, expected=expected or "records", shown_as=shown)
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"empty file{wanted}", path=shown)
    if stripped[0] == "[":
        values, suspect = _decode_flagged(text, shown=shown, index=None, line=None, context=wanted)
        records = [JsonRecord(index, None, value) for index, value in enumerate(values)]
        if suspect:  # decided once for the file: per record it was quadratic
            for record in records:
                _refuse_untrusted(record.value, shown=shown, index=record.index, line=None, nan_as_null=nan_as_null, context=wanted)
    else:
        records = []
        for lineno, line in json_lines(text):
            if not line.strip():
                continue
            value = parse_json(
                line, shown=shown, index=len(records), line=lineno, nan_as_null=nan_as_null,
                expected=f"{expected or 'records'} as a JSON list or JSON Lines",
            )
            records.append(JsonRecord(len(records), lineno, value))
    if objects_only:
        for record in records:
            if not isinstance(record.value, dict):
                raise InputError(
                    f"is a JSON {_json_type(record.value)}, not an object{wanted}", path=shown, record=record.index
                )
    if not records:
        raise InputError(f"no records{wanted}", path=shown)
    return records


def _json_type(value: Any) -> str:
    """JSON's name for a parsed value's type (``list`` reads as Python, ``array`` as JSON: keep the
    Python names users already see in other messages, but say null / true for None / bools)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return type(value).__name__
