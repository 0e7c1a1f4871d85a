"""`evalkit leaderboard`: the leaderboard as a rich table, JSON, CSV or Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table
from rich.text import Text

from evalkit.output import console, to_csv
from evalkit.report.leaderboard import STAR_LEGEND, build_leaderboard, text_table, to_markdown
from evalkit.store import ResultsStore


def _rich_table(board) -> Table:
    headers, rows = text_table(board)
    table = Table(title="evalkit leaderboard", show_lines=False)
    for h in headers:
        table.add_column(Text(h), overflow="fold", justify="left" if h == "model" else "right")
    for row in rows:
        table.add_row(*(Text(row.get(h, "-")) for h in headers))  # Text: model names are not markup
    return table


def write_leaderboard(
    store: ResultsStore, fmt: str, out: Path | None = None, *, runs: Sequence[str] | None = None,
    include_unfinished: bool = False,
) -> Path | None:
    """Print the leaderboard (``out`` None) or write it to ``out``; returns the path written."""
    board = build_leaderboard(store, runs, include_unfinished=include_unfinished)
    if fmt == "table":
        if out is None:
            con = console()
            if not board.rows:
                con.print("leaderboard: no finished runs with scores yet", markup=False)
                return None
            con.print(_rich_table(board))
            for warning in board.warnings():
                con.print(Text(f"⚠ not comparable: {warning}"))
            if any(board.best.values()):
                con.print(Text(STAR_LEGEND))
            return None
        text = _plain_table(board)
    elif fmt == "json":
        text = json.dumps(board.rows, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        text = to_csv(board.rows, list(board.rows[0]) if board.rows else ["model"])
    elif fmt == "md":
        text = to_markdown(board)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if out is None:
        import sys

        sys.stdout.write(text)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _plain_table(board) -> str:
    import io

    from rich.console import Console

    con = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    con.print(_rich_table(board))
    for warning in board.warnings():
        con.print(Text(f"⚠ not comparable: {warning}"))
    return con.export_text()
