"""Printing a comparison: a rich table with notes, or one JSON object / CSV row per mode."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.table import Table
from rich.text import Text

from evalkit.output import console, fit_words, to_csv

# The contract of `evalkit compare --format json|csv`: these keys first, in this order.
CONTRACT_KEYS = ("mode", "a", "b", "diff", "ci_low", "ci_high", "p_value", "p_holm", "n", "verdict")
CSV_COLUMNS = (*CONTRACT_KEYS, "unit", "alpha", "refused", "runs")

_DIGITS = {"accuracy": 4, "score 0-100": 2, "win rate %": 2, "share of decisive votes": 3, "Elo": 1}


def json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps([_ordered(r) for r in rows], ensure_ascii=False, indent=2, default=str) + "\n"


def csv_rows(rows: list[dict[str, Any]]) -> str:
    return to_csv([_ordered(r) for r in rows], CSV_COLUMNS)


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: row.get(k) for k in CONTRACT_KEYS}, **{k: v for k, v in row.items() if k not in CONTRACT_KEYS}}


def _num(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.{_DIGITS.get(unit, 4)}f}"


def _p(value: Any) -> str:
    if value is None:
        return "-"
    return "<1e-300" if value == 0 else f"{value:.3g}"


def _cells(label: str, row: dict[str, Any], *, p_holm: bool = True, verdict: str | None = None) -> list[Text]:
    unit = row.get("unit", "")
    ci = "-" if row.get("ci_low") is None else f"[{_num(row['ci_low'], unit)}, {_num(row['ci_high'], unit)}]"
    return [
        Text(label),
        Text(_num(row.get("a"), unit)),
        Text(_num(row.get("b"), unit)),
        Text(_num(row.get("diff"), unit)),
        Text(ci),
        Text(_p(row.get("p_value"))),
        Text(_p(row.get("p_holm")) if p_holm else ""),
        Text(str(row.get("n") or "-")),
        Text(row.get("verdict") or "" if verdict is None else verdict),
    ]


def print_table(rows: list[dict[str, Any]], model_a: str, model_b: str) -> None:
    """The per-mode table; indented rows are descriptive detail (not part of the Holm family)."""
    alpha = rows[0].get("alpha", 0.05) if rows else 0.05
    level = round((1 - alpha) * 100, 6)
    table = Table(title=Text(f"A = {model_a}   vs   B = {model_b}"), title_justify="left")
    table.add_column(Text("mode"))
    for name in ("A", "B", "B - A", f"{level:g}% CI", "p", "p (Holm)", "n"):
        table.add_column(Text(name), justify="right")
    table.add_column(Text("verdict"))
    notes: list[str] = []
    for row in rows:
        detail = row.get("detail") or {}
        if row.get("refused"):
            table.add_row(*_cells(row["mode"], row, verdict="refused"))
            notes.append(f"{row['mode']}: refused: {row['refused']}")
            continue
        table.add_row(*_cells(row["mode"], row))
        for category in detail.get("categories", []):
            table.add_row(*_cells(f"  {category['mode']}", category, p_holm=False, verdict=""))
        if detail.get("head_to_head"):
            head = detail["head_to_head"]
            table.add_row(*_cells("  head-to-head judge", head, p_holm=False, verdict=""))
            notes.append(f"judge-pairwise: head-to-head run {head['runs'].get('head_to_head')}: B's win rate "
                         f"{_num(head['b'], 'win rate %')}% over {head['n']} instructions (interval, p: not Holm-adjusted)")
        if detail.get("bradley_terry"):
            bt = {**detail["bradley_terry"], "unit": "Elo"}
            table.add_row(*_cells("  Bradley-Terry", {**bt, "n": bt["battles"]}, p_holm=False, verdict=""))
        notes.extend(_mode_notes(row))
    tested = rows[0]["detail"].get("holm_family_size", 0) if rows else 0
    units = ", ".join(dict.fromkeys(f"{r['mode']} in {r['unit']}" for r in rows if r.get("unit")))
    family = (
        f"Holm-adjusted p-values across the {tested} tests shown (several tests were run)"
        if tested > 1 else "the p-value of the one test shown (nothing to adjust)"
    )
    notes.insert(0, f"B - A > 0 favours B ({units}). Verdicts use {family} at alpha {alpha:g}; "
                    "indented rows are descriptive, not adjusted.")
    out = console()
    if not out.is_terminal:
        out.width = 150  # a file or pipe has no width to fit; rich would assume 80 and fold every column
    out.print(fit_words(table, out.width))
    # notes are prose: let the terminal wrap them, so a pipe or file gets whole lines
    for note in notes:
        out.print(Text(f"* {note}"), soft_wrap=True)
    out.print(Text("runs: " + "; ".join(f"{r['mode']}: {json.dumps(r.get('runs') or {})}" for r in rows)), soft_wrap=True)


def _mode_notes(row: dict[str, Any]) -> list[str]:
    detail = row["detail"]
    mode = row["mode"]
    notes = [f"{mode}: {detail['test']}; {detail['interval']}"] if "test" in detail else []
    if "share_b_higher" in detail:
        notes.append(
            f"{mode}: B scored higher on {detail['share_b_higher']:.1%}, equal on {detail['share_equal']:.1%}, "
            f"lower on {detail['share_b_lower']:.1%} of items"
        )
    if "ties_policy" in detail:
        notes.append(f"{mode}: head-to-head record A {detail['a_wins']} - B {detail['b_wins']}, "
                     f"{detail['ties']} ties ({detail['ties_policy']} from the test)")
    if "common_reference" in detail:
        notes.append(f"{mode}: head-to-head judge run only; against a common reference: {detail['common_reference']}")
    notes.extend(f"{mode}: {note}" for note in detail.get("notes", []))
    return notes


def write(rows: list[dict[str, Any]], fmt: str, model_a: str, model_b: str) -> None:
    if fmt == "json":
        sys.stdout.write(json_rows(rows))
    elif fmt == "csv":
        sys.stdout.write(csv_rows(rows))
    else:
        print_table(rows, model_a, model_b)
