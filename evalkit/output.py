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


def _reduce(widths: list[int], floors: list[int], order: list[int], excess: int) -> int:
    """Take up to ``excess`` characters from the columns in ``order`` (widest first each round),
    never below their floor; returns what is still to take."""
    while excess > 0:
        candidates = [i for i in order if widths[i] > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return excess


def fit_words(table: Table, width: int | None = None) -> Table:
    """Column widths for a terminal of ``width`` that never fold a word over two lines (rich's
    ``overflow="fold"`` cut ids, model names and verdicts mid-word at 80 columns).

    A table that fits is left as is. Otherwise, in this order until it fits: text columns wrap at
    spaces down to their longest word; single-word columns (model names, kinds) are shortened
    with "…", widest first, down to 8 characters; ids (``no_wrap`` columns) last. Rich's own
    collapsing knows no word boundaries, so the widths are fixed here.
    """
    width = width or console().width
    natural, longest = [], []
    for column in table.columns:
        cells = [column.header, *column._cells]  # rich keeps no public accessor for a column's cells
        texts = [cell.plain if isinstance(cell, Text) else str(cell) for cell in cells]
        natural.append(max((len(line) for t in texts for line in t.splitlines() or [""]), default=0))
        longest.append(max((len(word) for t in texts for word in t.split()), default=0))
        column.overflow = "ellipsis"
    available = width - (3 * len(table.columns) + 1)  # a bar and a space each side of every cell
    excess = sum(natural) - available
    if excess <= 0:
        return table
    widths = list(natural)
    ids = [i for i, c in enumerate(table.columns) if c.no_wrap]
    others = [i for i in range(len(widths)) if i not in ids]
    multi_word = [i for i in others if longest[i] < natural[i]]
    excess = _reduce(widths, longest, multi_word, excess)
    excess = _reduce(widths, [min(8, n) for n in natural], others, excess)
    _reduce(widths, [min(8, n) for n in natural], ids + others, excess)
    for column, size in zip(table.columns, widths):
        column.width = size
        for cell in column._cells:
            if isinstance(cell, Text) and size < len(cell.plain) and " " not in cell.plain.strip():
                cell.plain = _middle_ellipsis(cell.plain, size)
    return table


def _middle_ellipsis(word: str, size: int) -> str:
    """Names differ at both ends ("gpt2-tiny-random-init" vs "...-demo-sft"): keep both."""
    if size < 5:
        return word[: max(size - 1, 0)] + "…"
    tail = (size - 1) // 2
    return word[: size - 1 - tail] + "…" + word[len(word) - tail:]


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
        # ids are copied into later commands: never wrapped
        table.add_column(Text(col), no_wrap=col in ("id", "run_id"))
    for row in rows:
        table.add_row(*(Text(fmt_number(row.get(c))) for c in columns))  # Text: no markup from data
    if not rows:
        console().print(f"{title + ': ' if title else ''}(nothing to show)", markup=False)
        return
    console().print(fit_words(table))


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
