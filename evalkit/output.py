"""Printing results people compare: rich tables in the terminal, JSON or CSV for machines.

Everything a model wrote is untrusted: CSV goes through the csv module (quoting), JSON
through json.dumps, and rich tables get text with markup disabled.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "json", "csv")


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def fmt_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return buffer.getvalue()


def print_rows(
    rows: Sequence[dict[str, Any]],
    fmt: str = "table",
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    json_value: Any = None,
) -> None:
    """Print ``rows`` as a rich table, a JSON list (or ``json_value`` when given) or CSV."""
    if fmt == "json":
        sys.stdout.write(json.dumps(rows if json_value is None else json_value, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        sys.stdout.write(to_csv(rows, columns))
        return
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, show_lines=False)
    for col in columns:
        # ids are copied into later commands: never fold them over two lines
        table.add_column(Text(col), overflow="fold", no_wrap=col in ("id", "run_id"))
    for row in rows:
        table.add_row(*(Text(fmt_number(row.get(c))) for c in columns))  # Text: no markup from data
    if not rows:
        console().print(f"{title + ': ' if title else ''}(nothing to show)", markup=False)
        return
    console().print(table)


def write_text(text: str, out: "Path | None", default_name: str) -> "Path | None":
    """``text`` to stdout (``out`` None), into a folder under ``default_name``, or to a file;
    files are written atomically. ``default_name`` (often a run id) may never leave the folder."""
    from pathlib import Path

    from evalkit.schema import check_safe_id

    if out is None:
        sys.stdout.write(text)
        return None
    out = Path(out)
    if out.is_dir():
        out = out / check_safe_id(default_name, "export file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
