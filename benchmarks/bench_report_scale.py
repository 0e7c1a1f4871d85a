"""The 20-model case of issue 17, end to end: real formats in, every figure out.

For each model count N (``--models 5,20``) the benchmark writes, in a fresh folder:

* lm-eval 0.4's output for the full MMLU test split: ``results_<date>.json`` and one
  ``samples_mmlu_<subject>_<date>.jsonl`` per subject, each line made with lm-eval's own
  ``sanitize_list``/``hash_string``/``handle_non_serializable`` and ``json.dumps(...,
  ensure_ascii=False)`` exactly as ``EvaluationTracker.save_results_samples`` writes it (so the
  two questions with a raw U+0085 stay raw unless ``--escape-line-breaks``);
* an AlpacaEval annotations file per model (805 instructions; the three real annotation files,
  each model's outputs prefixed with its name so nothing deduplicates that a real case would keep);
* one Chatbot Arena battles file (``--battles`` votes between the N models, with conversations).

Log-likelihoods are drawn per model from a seeded generator (they only have to be numbers);
the texts, the prompt template and the files' layout are the real ones. Everything is imported
with ``evalkit import`` (one process per file: time, CPU and peak RSS from ``wait4``), then
``evalkit report --all``, ``leaderboard --all``, ``compare``, ``runs list`` are run and timed, and
the report is opened in headless Chromium (Playwright): table visible, a model's drill-down
usable (``body[data-items-ready="1"]`` after clicking its name), filter time, JS heap, console
errors. The smallest N is the baseline for the growth ratios. The machine is shared: each
command's own CPU time is given beside its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DATA = Path(os.environ.get("EVALKIT_SHARED_DATA") or "/nonexistent")
CHROMIUM = os.environ.get("EVALKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LETTERS = ("A", "B", "C", "D")
GOALS_20 = {  # issue 17's goals at 20 models
    "report_cpu_s": 15.0, "report_rss_mb": 1024.0, "html_mb": 30.0, "store_mb": 400.0,
    "table_visible_s": 1.0, "drilldown_s": 1.5, "filter_s": 0.2, "js_heap_mb": 150.0,
    "leaderboard_s": 1.5, "compare_s": 3.0, "runs_list_s": 0.5, "import_max_s": 3.0, "import_max_rss_mb": 400.0,
}


def _options(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks report_scale")
    p.add_argument("--models", default="5,20", help="model counts, comma-separated (default: 5,20)")
    p.add_argument("--subjects", type=int, default=0, help="only the first N MMLU subjects (0: all 57)")
    p.add_argument("--battles", type=int, default=5000, help="Arena votes (default: 5000)")
    p.add_argument("--alpaca-items", type=int, default=0, help="only the first N AlpacaEval instructions (0: all 805)")
    p.add_argument("--escape-line-breaks", action="store_true",
                   help="write U+0085/U+2028/U+2029 as \\u escapes (for a reader that still splits on them)")
    p.add_argument("--keep", type=Path, help="keep the generated case and store in this folder")
    return p.parse_args(argv or [])


# -- the case, in the real formats -----------------------------------------------------------------


def _mmlu_rows(subjects: int) -> tuple[dict[str, list[dict]], dict[str, str]]:
    from evalkit.interop.lm_eval_format import _installed_categories

    by_subject: dict[str, list[dict]] = {}
    with open(DATA / "mmlu" / "test.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            by_subject.setdefault(row["subject"], []).append(row)
    names = sorted(by_subject)[: subjects or None]
    categories = _installed_categories()
    return {s: by_subject[s] for s in names}, {s: categories.get(s, "other") for s in names}


def _context(subject: str, row: dict) -> str:
    # lm-eval's default MMLU template (description + doc_to_text), zero-shot
    description = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    body = row["question"].strip() + "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, row["choices"]))
    return description + body + "\nAnswer:"


def _write_lm_eval(folder: Path, model: str, seed: int, rows: dict[str, list[dict]], categories: dict[str, str], escape: bool) -> Path:
    from lm_eval.utils import handle_non_serializable, hash_string, sanitize_list

    rng = random.Random(seed)
    skill = 0.25 + 0.3 * rng.random()
    stamp = datetime(2026, 1, 1, 0, 0, seed % 60, tzinfo=timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    totals: dict[str, list[int]] = {}
    for subject, docs in rows.items():
        correct = 0
        with open(folder / f"samples_mmlu_{subject}_{stamp}.jsonl", "w", encoding="utf-8") as fh:
            for doc_id, doc in enumerate(docs):
                context = _context(subject, doc)
                lls = [-rng.uniform(0.5, 8.0) for _ in LETTERS]
                if rng.random() < skill:
                    lls[doc["answer"]] = max(lls) + rng.uniform(0.01, 1.0)
                acc = float(max(range(4), key=lls.__getitem__) == doc["answer"])
                correct += int(acc)
                arguments = [(context, f" {letter}") for letter in LETTERS]
                sample = {
                    "doc_id": doc_id,
                    "doc": doc,
                    "target": doc["answer"],
                    "arguments": {f"gen_args_{i}": {f"arg_{j}": v for j, v in enumerate(arg)} for i, arg in enumerate(arguments)},
                    "resps": sanitize_list([[(ll, False)] for ll in lls]),
                    "filtered_resps": sanitize_list([(ll, False) for ll in lls]),
                    "filter": "none",
                    "metrics": ["acc"],
                    "doc_hash": hash_string(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False)),
                    "prompt_hash": hash_string(context),
                    "target_hash": hash_string(str(doc["answer"])),
                    "acc": acc,
                }
                sample["target"] = str(sample["target"])
                line = json.dumps(sample, default=handle_non_serializable, ensure_ascii=False)
                if escape:
                    line = line.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
                fh.write(line + "\n")
        n = len(docs)
        acc = correct / n
        results[f"mmlu_{subject}"] = {"alias": f"  - {subject.replace('_', ' ')}", "acc,none": acc,
                                      "acc_stderr,none": (acc * (1 - acc) / max(1, n - 1)) ** 0.5}
        totals.setdefault(categories[subject], [0, 0])
        totals[categories[subject]][0] += correct
        totals[categories[subject]][1] += n
    group_subtasks = {f"mmlu_{c}": [f"mmlu_{s}" for s in rows if categories[s] == c] for c in sorted(totals)}
    for category, (correct, n) in totals.items():
        results[f"mmlu_{category}"] = {"alias": f" - {category}", "acc,none": correct / n, "acc_stderr,none": 0.01}
    all_correct, all_n = sum(t[0] for t in totals.values()), sum(t[1] for t in totals.values())
    results["mmlu"] = {"alias": "mmlu", "acc,none": all_correct / all_n, "acc_stderr,none": 0.004}
    doc = {
        "results": results,
        "groups": {g: results[g] for g in ["mmlu", *group_subtasks]},
        "group_subtasks": {**group_subtasks, "mmlu": list(group_subtasks)},
        "configs": {f"mmlu_{s}": {"task": f"mmlu_{s}", "num_fewshot": 0} for s in rows},
        "versions": {f"mmlu_{s}": 1.0 for s in rows},
        "n-shot": {f"mmlu_{s}": 0 for s in rows},
        "higher_is_better": {f"mmlu_{s}": {"acc": True} for s in rows},
        "n-samples": {f"mmlu_{s}": {"original": len(d), "effective": len(d)} for s, d in rows.items()},
        "config": {"model": "hf", "model_args": f"pretrained=/checkpoints/{model}", "batch_size": "8", "limit": None},
        "git_hash": None,
        "date": 1767225600.0 + seed,
        "lm_eval_version": "0.4.9",
        "model_name": model,
        "model_name_sanitized": model,
        "total_evaluation_time_seconds": "1234.5",
    }
    path = folder / f"results_{stamp}.json"
    path.write_text(json.dumps(doc, indent=2, default=handle_non_serializable, ensure_ascii=False), encoding="utf-8")
    return path


def _write_alpaca(folder: Path, models: list[str], items: int) -> list[Path]:
    sources = [json.loads(f.read_text(encoding="utf-8")) for f in sorted((DATA / "alpaca_eval" / "annotations").glob("*.json"))]
    paths = []
    for m, model in enumerate(models):
        records = []
        for r in sources[m % len(sources)][: items or None]:
            records.append({**r, "output_2": f"[{model}] {r['output_2']}", "generator_2": model})
        path = folder / f"annotations-{model}.json"
        path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def _write_battles(folder: Path, models: list[str], votes: int) -> Path:
    rng = random.Random(17)
    prompts = json.loads((DATA / "alpaca_eval" / "alpaca_eval_gpt4_1106_preview_reference.json").read_text(encoding="utf-8"))
    strength = {m: rng.gauss(0, 1) for m in models}
    battles = []
    for k in range(votes):
        a, b = rng.sample(models, 2)
        edge = strength[b] - strength[a]
        draw = rng.random()
        winner = "tie" if draw < 0.1 else ("tie (bothbad)" if draw < 0.15 else ("model_b" if rng.random() < 1 / (1 + 10 ** (-edge / 2)) else "model_a"))
        prompt = prompts[k % len(prompts)]
        battles.append({
            "question_id": f"q{k:05d}", "model_a": a, "model_b": b, "winner": winner, "judge": f"arena_user_{k % 400}",
            "conversation_a": [{"role": "user", "content": prompt["instruction"]}, {"role": "assistant", "content": f"[{a}] {prompt['output'][:600]}"}],
            "conversation_b": [{"role": "user", "content": prompt["instruction"]}, {"role": "assistant", "content": f"[{b}] {prompt['output'][:600]}"}],
            "turn": 1, "anony": True, "language": "English", "tstamp": 1767225600.0 + 60 * k,
        })
    path = folder / "battles.json"
    path.write_text(json.dumps(battles, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


# -- measuring ------------------------------------------------------------------------------------


def _evalkit_measured(store: Path, *args: str) -> dict:
    """Run ``evalkit ARGS`` in a child process: wall time, and CPU time and peak RSS of that child
    alone (``wait4``'s rusage; output goes to files so a chatty child cannot block on a pipe)."""
    env = {**os.environ, "EVALKIT_STORE": str(store)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "evalkit", *args], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"evalkit {' '.join(args)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _browser(path: Path, model: str) -> dict:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        started = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="commit")
        page.wait_for_selector("#leaderboard tr[data-model]", state="visible", timeout=60000)
        table = time.perf_counter() - started
        link = page.locator(f".model-link[data-model='{model}']").first
        link.click()
        page.wait_for_function(
            "m => document.body.getAttribute('data-items-ready') === '1' && document.getElementById('dd-model').value === m"
            " && document.querySelectorAll('#dd-items tbody tr').length > 0", arg=model, timeout=120000)
        drilldown = time.perf_counter() - started
        filter_s = page.evaluate("""() => {
            const box = document.getElementById('dd-filter');
            const t0 = performance.now();
            box.value = 'the'; box.dispatchEvent(new Event('input'));
            const rows = document.querySelectorAll('#dd-items tbody tr').length;
            return (performance.now() - t0) / 1000;
        }""")
        page.wait_for_timeout(500)
        heap = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        browser.close()
    return {"table_visible_s": table, "drilldown_s": drilldown, "filter_s": filter_s,
            "js_heap_mb": heap.get("JSHeapUsedSize", 0) / 2**20, "console_errors": len(errors), "errors": errors[:5]}


def _measure(n_models: int, options: argparse.Namespace, rows, categories, folder: Path) -> dict:
    models = [f"ckpt-{m:02d}" for m in range(n_models)]
    case = folder / f"case-{n_models}"
    store = folder / f"store-{n_models}" / "evalkit.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    lm_files = [_write_lm_eval(case / "lm_eval" / m, m, k, rows, categories, options.escape_line_breaks) for k, m in enumerate(models)]
    alpaca_files = _write_alpaca(case, models, options.alpaca_items)
    battles_file = _write_battles(case, models, options.battles)

    imports = []
    for kind, files in (("lm-eval", lm_files), ("alpaca-eval", alpaca_files), ("arena", [battles_file])):
        for f in files:
            imports.append({"kind": kind, **_evalkit_measured(store, "import", kind, str(f))})
    report_path = folder / f"report-{n_models}.html"
    report = _evalkit_measured(store, "report", "--all", "--out", str(report_path))
    leaderboard = _evalkit_measured(store, "leaderboard", "--all", "--format", "json")
    # after the report: the Bradley-Terry bootstrap fits are in the store's cache
    compare = _evalkit_measured(store, "compare", models[0], models[1])
    with sqlite3.connect(store) as conn:  # and without them: the thousand refits of the human mode
        conn.execute("DELETE FROM cache WHERE key LIKE 'compare/bradley-terry/%'")
    compare_cold = _evalkit_measured(store, "compare", models[0], models[1])
    runs_list = _evalkit_measured(store, "runs", "list")
    row = {
        "models": n_models,
        "mmlu_items": sum(len(d) for d in rows.values()),
        "report_cpu_s": report["cpu_s"],
        "report_wall_s": report["wall_s"],
        "report_rss_mb": report["rss_mb"],
        "html_mb": report_path.stat().st_size / 2**20,
        "store_mb": _folder_mb(store.parent),
        "leaderboard_s": leaderboard["wall_s"],
        "leaderboard_cpu_s": leaderboard["cpu_s"],
        "compare_s": compare["wall_s"],
        "compare_cpu_s": compare["cpu_s"],
        "compare_cold_s": compare_cold["wall_s"],
        "compare_cold_cpu_s": compare_cold["cpu_s"],
        "runs_list_s": runs_list["wall_s"],
        "runs_list_cpu_s": runs_list["cpu_s"],
    }
    for kind in ("lm-eval", "alpaca-eval", "arena"):
        mine = [i for i in imports if i["kind"] == kind]
        row[f"import_{kind}_max_s"] = max(i["wall_s"] for i in mine)
        row[f"import_{kind}_max_cpu_s"] = max(i["cpu_s"] for i in mine)
        row[f"import_{kind}_max_rss_mb"] = max(i["rss_mb"] for i in mine)
    row["import_max_s"] = max(i["wall_s"] for i in imports)
    row["import_max_rss_mb"] = max(i["rss_mb"] for i in imports)
    if Path(CHROMIUM).exists():
        row.update(_browser(report_path, models[-1]))
    return row


def run(argv: list[str] | None = None) -> dict:
    options = _options(argv)
    if not (DATA / "mmlu" / "test.jsonl").is_file() or not (DATA / "alpaca_eval").is_dir():
        raise SystemExit(f"report_scale needs the MMLU test split and AlpacaEval files under $EVALKIT_SHARED_DATA ({DATA})")
    counts = sorted(int(n) for n in options.models.split(","))
    rows, categories = _mmlu_rows(options.subjects)
    measured = []
    folder = Path(tempfile.mkdtemp(prefix="evalkit-report-scale-")) if options.keep is None else options.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for n in counts:
            try:
                measured.append(_measure(n, options, rows, categories, folder))
            except RuntimeError as exc:
                hint = "" if options.escape_line_breaks else (
                    "\n(lm-eval writes U+0085 raw in two MMLU questions; a JSON Lines reader that splits lines on it fails"
                    " here. --escape-line-breaks writes it escaped to measure the rest.)")
                raise SystemExit(f"report_scale, {n} models: {exc}{hint}") from None
    finally:
        if options.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    # one table: a row per figure, a column per model count (the layout)
    figures = [k for k in measured[0] if k not in ("models", "errors")]
    table = [{"figure": k, **{f"{r['models']} models": r[k] for r in measured},
              **({"goal (20)": GOALS_20[k]} if k in GOALS_20 else {"goal (20)": ""})} for k in figures]
    ratios = {}
    if len(measured) > 1:
        small, large = measured[0], measured[-1]
        scale = large["models"] / small["models"]
        for k in ("report_cpu_s", "report_rss_mb", "html_mb", "store_mb", "drilldown_s", "js_heap_mb", "leaderboard_s"):
            if small.get(k):
                ratios[f"{k} {large['models']}/{small['models']} models (linear: {scale:g})"] = large[k] / small[k]
    return {
        "title": f"report at scale: {', '.join(map(str, counts))} models x (MMLU {measured[0]['mmlu_items']} + AlpacaEval) + {options.battles} votes"
                 + (" (U+0085/2028/2029 escaped)" if options.escape_line_breaks else " (lm-eval lines byte for byte)"),
        "rows": table,
        "ratios": ratios,
        "measured": measured,
        "options": {k: str(v) for k, v in vars(options).items()},
    }
