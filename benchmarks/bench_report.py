"""HTML report for 20 models x 805 items: file size (goal < 15 MB), time to render, and time to
first paint and to items ready in headless Chromium (goal < 2 s to first paint).

Texts are AlpacaEval 2's real annotations (three models' outputs against the GPT-4 Turbo
reference, with the judge's raw completions); models beyond three reuse them with a prefix that
makes every response distinct, so nothing is deduplicated that a real report would keep. The
metric values are a plain mean of the preferences: they only have to exist, this measures speed.
A 2-model report rendered in the same process is the baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from evalkit.items import instruction_item_id
from evalkit.report import render_report
from evalkit.store import Metric, ResultsStore

N_MODELS = 20
DATA = Path(os.environ.get("EVALKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
CHROMIUM = os.environ.get("EVALKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _fill(store: ResultsStore, n_models: int) -> None:
    files = sorted((DATA / "alpaca_eval" / "annotations").glob("*.json"))
    if not files:
        raise SystemExit(f"benchmark needs AlpacaEval annotations under {DATA}/alpaca_eval/annotations")
    sources = [json.loads(f.read_text()) for f in files]
    for m in range(n_models):
        records = sources[m % len(sources)]
        model = f"model-{m:02d}"
        prefix = "" if m < len(sources) else f"[{model}] "
        with store.start_run("generate", model, {"eval_set": "alpaca_eval"}) as run:
            run.add_samples((instruction_item_id(r["instruction"]), {
                "instruction": r["instruction"], "input": "", "output": r["output_1"], "response": prefix + r["output_2"],
                "prompt": r["instruction"], "tokens": len(r["output_2"]) // 4, "seconds": 1.0}) for r in records)
            run.log_metrics({"n": len(records)})
        with store.start_run("judge-pairwise", model, {"eval_set": "alpaca_eval", "judge_model": "weighted_alpaca_eval_gpt4_turbo",
                                                       "reference": "gpt4_1106_preview"}) as run:
            prefs = [float(r["preference"]) for r in records]
            run.add_samples((instruction_item_id(r["instruction"]), {
                "instruction": r["instruction"], "input": "", "output_1": r["output_1"], "generator_1": r["generator_1"],
                "output_2": prefix + r["output_2"], "generator_2": model, "preference": float(r["preference"]), "status": "ok",
                "raw_completion": str(r.get("raw_completion"))}) for r in records)
            win = 100 * sum(p - 1 for p in prefs) / len(prefs)
            run.log_metrics({"win_rate": Metric(win, 1.0, len(prefs)), "n_total": len(prefs)})


def _browser_times(path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="commit")
        page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0", timeout=60000)
        paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime") / 1000
        page.wait_for_selector("body[data-items-ready='1']", timeout=120000)
        ready = time.perf_counter() - started
        browser.close()
    return {"first_paint_s": paint, "items_ready_s": ready}


def _measure(n_models: int, folder: Path) -> dict:
    store = ResultsStore(folder / f"bench-{n_models}.db")
    _fill(store, n_models)
    started = time.perf_counter()
    out = render_report(store, folder / f"report-{n_models}.html", title=f"benchmark: {n_models} models")
    render_s = time.perf_counter() - started
    store.close()
    row = {"case": f"{n_models} models" + (" (baseline)" if n_models < N_MODELS else ""), "models": n_models, "items_per_model": 805, "file_mb": out.stat().st_size / 1e6, "render_s": render_s}
    if Path(CHROMIUM).exists():
        row.update(_browser_times(out))
    return row


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = _measure(2, Path(tmp))
        full = _measure(N_MODELS, Path(tmp))
    ratios = {"file size 20 / 2 models": full["file_mb"] / base["file_mb"], "render time 20 / 2 models": full["render_s"] / base["render_s"]}
    if "first_paint_s" in full:
        ratios["first paint 20 / 2 models"] = full["first_paint_s"] / base["first_paint_s"]
    return {"title": "HTML report: size, render time, first paint (goals: < 15 MB, < 2 s)", "rows": [base, full], "ratios": ratios}
