"""``render_report``: one self-contained HTML file with every number, its provenance and its items.

Safety of untrusted text (model responses, judge answers, model names):

* the template is rendered by Jinja2 with autoescaping on;
* data for the page's script is JSON inside ``<script type="application/json">`` with ``<``,
  ``>`` and ``&`` written as ``\\u003c``-style escapes, so ``</script>`` or ``<!--`` in a
  response cannot end the element; large item data is gzip+base64 instead (same guarantee);
* the page's script puts text on the page through ``textContent`` only;
* a Content-Security-Policy forbids every network request and allows only the page's own
  script (by its sha256), so even a payload that slipped through could not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import orjson
from zlib_ng import zlib_ng

from evalkit.heap import no_cycle_collection
from evalkit.report.charts import interval_chart, loss_chart, mmlu_chart
from evalkit.report.collect import Collected, ReportStoreView, collect_runs
from evalkit.report.comparison import MAX_PAIRS, REPORT_BOOTSTRAP, compute_comparisons
from evalkit.report.drilldown import build_drilldown
from evalkit.report.leaderboard import COLUMN_BY_KEY, COLUMNS, Leaderboard, build_leaderboard, format_cell
from evalkit.report.provenance import FIELD_LABELS, Provenance
from evalkit.store import ResultsStore

# a block of item data (one run's rows, or the shared values) above this many characters of JSON
# is embedded gzip-compressed (about a fifth of the size, base64 included); smaller blocks stay
# plain JSON, which the page reads without waiting for a decompression stream
COMPRESS_OVER = 200_000
BATCH_ROWS = 2000  # rows per json.dumps call when streaming a block (the C encoder; iterencode is pure Python)

KIND_LABELS = {
    "mmlu": "MMLU",
    "judge-score": "Judge score",
    "judge-pairwise": "Pairwise judge",
    "arena": "Human rating",
    "human": "Human votes",
    "generate": "Responses",
    "finetune": "Fine-tuning",
}
KIND_ORDER = ["judge-score", "judge-pairwise", "generate", "mmlu", "human", "arena", "finetune"]
FIELD_DISPLAY = {
    "output": "reference answer (output)",
    "reference": "reference answer",
    "response": "model's response",
    "output_1": "baseline's answer (output_1)",
    "generator_1": "baseline",
    "output_2": "model's answer (output_2)",
    "generator_2": "model",
    "preference": "preference (1 = baseline better, 2 = model better)",
    "score": "judge score (0-100)",
    "raw": "judge's raw answer",
    "raw_completion": "judge's raw answer",
    "status": "status",
    "gold": "correct answer",
    "pred": "model's answer",
    "correct": "correct",
    "outcome": "vote",
    "response_a": "response A",
    "response_b": "response B",
}
# leaderboard column groups: the n column that follows each group
N_COLUMNS = {"mmlu_other": ("mmlu_acc", "questions"), "judge_score": ("judge_score", "items"),
             "lc_win_rate": ("win_rate", "items"), "bt_rating": ("bt_rating", "battles")}
GROUPS = {"mmlu": "MMLU accuracy %", "judge-score": "LLM judge", "judge-pairwise": "vs baseline %", "arena": "Human votes"}
TEMPLATES = resources.files("evalkit.report") / "templates"


def _template_text(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' characters at all."""
    return _escaped(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str))


def _escaped(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _json_parts(values: list[Any]) -> Iterator[bytes]:
    """A JSON array as UTF-8 pieces, a batch of values at a time (no whole-block string)."""
    yield b"["
    for start in range(0, len(values), BATCH_ROWS):
        batch = values[start:start + BATCH_ROWS]
        try:
            text = orjson.dumps(batch)
        except TypeError:  # what orjson will not write (odd objects, non-string keys): as json writes it
            text = json.dumps(batch, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str).encode("utf-8")
        text = text.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
        yield (b"," if start else b"") + text[1:-1]
    yield b"]"


def encode_block(values: list[Any], compress_over: int = COMPRESS_OVER) -> tuple[str, str, str]:
    """(payload, script type, encoding) of one block of item data: plain JSON safe inside a
    <script> element, or, above ``compress_over`` bytes, gzip+base64 (streamed into the
    compressor piece by piece once the block turns out large)."""
    plain: list[bytes] = []
    size = 0
    parts = _json_parts(values)
    for part in parts:
        plain.append(part)
        size += len(part)
        if size > compress_over:
            break
    else:
        return b"".join(plain).decode("utf-8"), "application/json", "json"
    # zlib-ng writes the same gzip format faster: on a 20-model report's 84 MB of item data, zlib
    # at level 6 took 4.1 s for 22.6 MB; zlib-ng at level 7 takes 2.6 s for 22.3 MB (its level 6,
    # 1.7 s, is 2% larger: the page would pass 30 MB). wbits 31: a gzip header with mtime 0, so
    # the same store gives the same page.
    packer = zlib_ng.compressobj(7, zlib_ng.DEFLATED, 31)
    packed = [packer.compress(part) for part in plain]
    plain.clear()
    packed += [packer.compress(part) for part in parts]
    packed.append(packer.flush())
    return base64.b64encode(b"".join(packed)).decode("ascii"), "application/octet-stream", "gzip+base64"


def _item_blocks(drill: Any, compress_over: int) -> Iterator[dict[str, str]]:
    """One <script> block per run, encoded when the template reaches it (one run in memory)."""
    for index, (run_id, rows) in enumerate(drill.blocks()):
        payload, kind, encoding = encode_block(rows, compress_over)
        del rows
        yield {"id": f"report-items-{index}", "run": run_id, "type": kind, "encoding": encoding, "payload": payload}


def _num(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _provenance_pairs(p: Provenance) -> list[tuple[str, str]]:
    out = [("run id", p.run_id), ("kind", KIND_LABELS.get(p.kind, p.kind)), ("model", p.model or "several models"),
           ("status", p.status), ("date", p.date)]
    settings = {**p.settings, "reference": p.baseline} if p.kind == "judge-pairwise" else p.settings
    for name, value in settings.items():
        if value is None:
            out.append((FIELD_LABELS[name], "not recorded"))
        else:
            out.append((FIELD_LABELS[name], value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    out.append(("items", f"{p.n_items}" + (f" (set {p.items_hash})" if p.items_hash else "")))
    out += [("evalkit version", p.evalkit_version or "not recorded"), ("git commit", p.git_commit or "not recorded")]
    if p.model_path:
        out.append(("model path", p.model_path))
    if p.model_hash:
        out.append(("model hash", p.model_hash))
    return out


def _cell_title(p: Provenance) -> str:
    parts = [f"run {p.run_id}", p.date[:19].replace("T", " ")]
    for label, value in p.setup_description():
        parts.append(f"{label}: {value}")
    return " · ".join(parts)


def _table(board: Leaderboard) -> tuple[list[dict], list[dict]]:
    columns, keys = [], []
    previous_kind = None
    for c in COLUMNS:
        mixed = bool(board.setups.get(c.kind) and board.setups[c.kind].mixed)
        group = GROUPS.get(c.kind) if c.kind != previous_kind else None  # label a group once
        previous_kind = c.kind
        columns.append({"label": c.label, "group": group, "help": c.help, "mixed": mixed, "is_n": False})
        keys.append(("value", c))
        if c.key in N_COLUMNS:
            source, noun = N_COLUMNS[c.key]
            columns.append({"label": "n", "group": None, "help": f"number of {noun} behind the number", "mixed": False, "is_n": True})
            keys.append(("n", COLUMN_BY_KEY[source]))
    rows = []
    for row in board.rows:
        cells = []
        for what, c in keys:
            if what == "n":
                n = row.get(f"{c.key}_n")
                cells.append({"is_n": True, "value": n, "sort": n})
                continue
            value = row[c.key]
            if value is None:
                cells.append({"is_n": False, "value": None})
                continue
            run_id = row[f"{c.key}_run"]
            scale = 100.0 if c.percent else 1.0
            stderr = row.get(f"{c.key}_stderr")
            if c.key == "bt_rating":
                lo, hi = row.get("bt_rating_ci_low"), row.get("bt_rating_ci_high")
                extra = f"[{lo:.0f}, {hi:.0f}]" if lo is not None and hi is not None else None
            else:
                extra = f"± {stderr * scale:.{c.digits}f}" if stderr is not None else None
            mixed = bool(board.setups.get(c.kind) and board.setups[c.kind].mixed)
            cells.append({
                "is_n": False,
                "value": f"{value * scale:.{c.digits}f}",
                "raw": repr(float(value)),
                "sort": repr(float(value)),
                "extra": extra,
                "run": run_id,
                "title": _cell_title(board.provenance[run_id]) + f" · {format_cell(row, c)}",
                "best": row["model"] in board.best.get(c.key, ()),
                "setup": row[f"{c.key}_setup"] if mixed else None,
            })
        rows.append({"model": row["model"], "cells": cells})
    return columns, rows


def _charts(store: ResultsStore, board: Leaderboard, collected: Collected) -> list[dict[str, str]]:
    def mixed(kind: str) -> bool:
        return bool(board.setups.get(kind) and board.setups[kind].mixed)

    charts = []
    rows = board.rows
    svg = interval_chart(rows, "win_rate", title="Pairwise win rate vs baseline", xlabel="win rate, %", prefix="c-win",
                         mixed=mixed("judge-pairwise"), second_key="lc_win_rate", second_label="length-controlled win rate")
    if svg:
        charts.append({"caption": "Win rate against the baseline (bars: ± 1 standard error; diamonds: length-controlled)", "svg": svg})
    svg = interval_chart(rows, "judge_score", title="Judge score", xlabel="mean score (0-100)", prefix="c-score", mixed=mixed("judge-score"))
    if svg:
        charts.append({"caption": "LLM judge score, mean ± 1 standard error", "svg": svg})
    svg = interval_chart(rows, "bt_rating", title="Human rating (Bradley-Terry)", xlabel="rating (Elo scale)", prefix="c-bt")
    if svg:
        charts.append({"caption": "Human Bradley-Terry rating with 95% bootstrap interval (dashed: average, 1000)", "svg": svg})
    svg = mmlu_chart(rows, prefix="c-mmlu", mixed=mixed("mmlu"))
    if svg:
        charts.append({"caption": "MMLU accuracy by category (dashed: chance)", "svg": svg})
    curves = []
    for run in collected.of_kind("finetune"):
        points = sorted((p for _, p in store.samples(run.id)), key=lambda p: (p.get("step") is None, p.get("step") or 0))
        precision = (run.config or {}).get("precision") or "fp32"  # runs from before it was recorded trained in fp32
        curves.append((f"{run.model or run.id} ({run.id}, {precision})", points))
    svg = loss_chart(curves, prefix="c-loss")
    if svg:
        charts.append({"caption": "Fine-tuning: training and validation loss", "svg": svg})
    return charts


def random_init_models(collected: Collected) -> list[str]:
    """Models that started from random weights (fine-tuned with ``init: random``, or named so by
    ``evalkit demo``): their numbers must never pass for a pretrained model's."""
    found: list[str] = []
    for run in collected.runs:
        config = run.config or {}
        random_start = config.get("init") == "random" or str(config.get("base_model") or "").startswith("random:")
        if random_start or "random-init" in (run.model or ""):
            found += [name for name in (run.model, config.get("name")) if name and name not in found]
    return found


def _setup_letters(board: Leaderboard) -> dict[str, str]:
    """run id -> setup letter, for runs whose kind has several setups."""
    out = {}
    for run in board.collected.runs:
        ks = board.setups.get(run.kind)
        if ks and ks.mixed:
            letter = ks.letter_of.get(board.provenance[run.id].comparability_key())
            if letter:
                out[run.id] = letter
    return out


def render_report(
    store: ResultsStore,
    out: str | Path,
    *,
    runs: Sequence[str] | None = None,
    title: str | None = None,
    include_unfinished: bool = False,
    notices: Sequence[str] = (),
    extra_sections: Sequence[dict[str, Any]] = (),
    max_pairs: int = MAX_PAIRS,
    compress_over: int = COMPRESS_OVER,
) -> Path:
    """Write the report for ``runs`` (default: every finished run) to ``out``; returns the path.

    ``notices`` are shown prominently at the top (e.g. "these models are randomly initialised").
    ``extra_sections`` are tables shown after the charts, each ``{"id", "title", "notes",
    "columns", "rows"}`` of plain text (escaped like everything else), e.g. an experiment's
    variant x mode comparison.
    """
    with no_cycle_collection():
        return _render_report(store, out, runs=runs, title=title, include_unfinished=include_unfinished, notices=notices,
                              extra_sections=extra_sections, max_pairs=max_pairs, compress_over=compress_over)


def _render_report(store, out, *, runs, title, include_unfinished, notices, extra_sections, max_pairs, compress_over) -> Path:
    from evalkit import __version__

    collected = collect_runs(store, runs, include_unfinished=include_unfinished)
    # one view of the store for the leaderboard's significance tests and the comparisons: each
    # run's item values read once, each pair of runs paired once
    view = ReportStoreView(store)
    board = build_leaderboard(view, collected=collected)
    table_columns, table_rows = _table(board)
    models = [r["model"] for r in board.rows]
    comparisons, comparisons_note = compute_comparisons(view, models, max_pairs=max_pairs)
    notices = list(notices)
    random_models = random_init_models(collected)
    if random_models:
        notices.append(
            f"Randomly initialised weights: {', '.join(random_models)} started from random weights, not a pretrained "
            "GPT-2. Their numbers are near chance and say nothing about a pretrained model."
        )
    unfinished = [r.id for r in collected.runs if r.status != "done"]
    if unfinished:
        notices.append(f"{len(unfinished)} run(s) in this report did not finish ({', '.join(unfinished)}): their numbers cover only the items done.")

    drill = build_drilldown(store, collected, setup_letter=_setup_letters(board))
    shared_blocks = []
    for group in drill.groups:
        payload, kind, encoding = encode_block(drill.shared[group["start"]:group["start"] + group["count"]], compress_over)
        shared_blocks.append({"id": group["id"], "type": kind, "encoding": encoding, "payload": payload})
    drill.shared = []  # encoded: not needed in memory any more

    meta = {
        "models": models,
        "kind_labels": KIND_LABELS,
        "kind_order": KIND_ORDER,
        "field_labels": FIELD_DISPLAY,
        "comparisons": comparisons,
        "runs": drill.runs,
        "shared_groups": drill.groups,
    }
    js = _template_text("report.js")
    if "</script" in js.lower():
        raise AssertionError("report.js must not contain '</script'")
    script_hash = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = ("default-src 'none'; "
           f"script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; "
           "connect-src 'none'; base-uri 'none'; form-action 'none'")

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _template_text(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    runs_view = []
    for run in collected.runs:
        metrics = [
            {"name": name, "value": _num(m.value), "stderr": _num(m.stderr), "n": _num(m.n),
             "raw": "" if m.value is None else repr(m.value), "raw_stderr": "" if m.stderr is None else repr(m.stderr),
             "raw_n": "" if m.n is None else repr(m.n)}
            for name, m in run.metrics.items()
        ]
        runs_view.append({"id": run.id, "kind": run.kind, "model": run.model, "status": run.status,
                          "provenance": _provenance_pairs(collected.provenance[run.id]),
                          "n_items": collected.provenance[run.id].n_items, "metrics": metrics})
    page = env.get_template("report.html.j2").generate(
        title=title or "evalkit leaderboard",
        csp=csp,
        css=_template_text("report.css"),
        js=js,
        evalkit_version=__version__,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        store_path=str(store.path),
        notices=notices,
        board=board,
        warnings=board.warnings(),
        table_columns=table_columns,
        table_rows=table_rows,
        setups=[(k, v) for k, v in board.setups.items() if k != "arena"],
        kind_labels=KIND_LABELS,
        charts=_charts(store, board, collected),
        comparisons_note=comparisons_note,
        bootstrap=REPORT_BOOTSTRAP,
        runs=runs_view,
        meta_json=script_json(meta),
        shared_blocks=shared_blocks,
        item_blocks=_item_blocks(drill, compress_over),
        extra_sections=list(extra_sections),
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:  # streamed: the page is never one string in memory
        for chunk in page:
            fh.write(chunk)
    tmp.replace(out)
    return out
