"""The experiment's results: a terminal table and a section of the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.output import fmt_number
from evalkit.store import ResultsStore

SECTION_ID = "experiment"


def _interval(row: dict[str, Any]) -> str:
    if row["ci_low"] is None or row["ci_high"] is None:
        return "–"
    return f"[{fmt_number(row['ci_low'])}, {fmt_number(row['ci_high'])}]"


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows as text cells: variant, mode, difference (variant - baseline), 95% interval, verdict, ..."""
    out = []
    for row in rows:
        seeds = ", ".join(fmt_number(d) for d in row["seed_diffs"]) if row["seed_diffs"] else ""
        out.append({
            "variant": row["variant"], "mode": row["mode"], "baseline": row["baseline"],
            "value": fmt_number(row["value"]), "diff": fmt_number(row["diff"]), "interval": _interval(row),
            "p_holm": fmt_number(row["p_holm"]), "n": str(row["n"]),
            "verdict": row["verdict"] + (f" ({row['refused']})" if row["refused"] else ""),
            "seed_diffs": seeds, "seed_sd": fmt_number(row["seed_sd"]) if row["seed_sd"] is not None else "",
        })
    return out


TABLE_COLUMNS = ["variant", "mode", "value", "diff", "interval", "p_holm", "n", "verdict", "seed_diffs", "seed_sd"]
HEADINGS = {"variant": "variant", "mode": "mode", "value": "value", "diff": "diff", "interval": "interval",
            "p_holm": "p (Holm)", "n": "n", "verdict": "verdict", "seed_diffs": "diff per seed", "seed_sd": "seed SD"}


def section(plan, result) -> dict[str, Any]:
    level = f"{100 * (1 - plan.compare.alpha):g}%"
    notes = [
        f"Plan {plan.name!r}: every variant against the baseline variant {plan.baseline!r} in every mode both were "
        f"evaluated in; value is the variant's, diff is variant - baseline with paired {level} bootstrap intervals; verdicts use "
        f"Holm-adjusted p-values across all {sum(1 for r in result.rows if r['p_holm'] is not None)} variant x mode tests.",
        *result.notes,
    ]
    if any(r["seed_diffs"] for r in result.rows):
        notes.append("With several seeds the paired test uses each variant's first seed; the per-seed differences "
                     "show whether the difference exceeds seed-to-seed noise.")
    cells = table_rows(result.rows)
    return {"id": SECTION_ID, "title": f"Experiment: {plan.name}", "notes": notes,
            "columns": [HEADINGS[c].replace("interval", f"{level} interval") for c in TABLE_COLUMNS],
            "rows": [[c[k] for k in TABLE_COLUMNS] for c in cells]}


def write_report(store: ResultsStore, plan, result, out: Path) -> Path:
    from evalkit.report import render_report

    names = {plan.model_name(v, s) for v in plan.variants for s in plan.seeds_of(v)}
    runs = [r.id for r in store.list_runs(status="done") if r.model in names and r.kind != "finetune"]
    return render_report(store, out, runs=runs or None, title=f"evalkit experiment: {plan.name}",
                         extra_sections=[section(plan, result)])
