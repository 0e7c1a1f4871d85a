"""User-facing errors.

Anything raised as :class:`EvalkitError` is printed by the CLI as one line (no traceback
unless ``-v``) and makes the command exit non-zero. Library callers can catch it.
"""

from __future__ import annotations


class EvalkitError(Exception):
    """A problem the user can fix: bad input, missing asset, unreachable server."""


class InputError(EvalkitError):
    """Bad input data. The message names the file, the record and the field."""

    def __init__(self, message: str, *, path: object = None, record: object = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join([', '.join(where)] if where else [])}{': ' if where else ''}{message}")
        self.path = path
        self.record = record
        self.field = field


class StoreVersionError(EvalkitError):
    """The results store was written by a newer evalkit than this one."""


class UnknownRunError(EvalkitError):
    """No run with the given id exists in the store."""
