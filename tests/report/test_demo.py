"""`evalkit demo --offline` end to end from the data shipped with evalkit, in a folder of its own
with the default store: every step runs (the judge is skipped without a server, and runs when
one answers), the fine-tuned model answers most test records, the book's real responses are a
model of the report, the last lines say where things are and what to run next, and running it
again adds no run. The demo runs once per module; the tests below read what it made."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from evalkit.store import ResultsStore
from tests.report.test_render import Page

pytestmark = pytest.mark.slow
NO_SERVER = "http://127.0.0.1:9"  # nothing listens on the discard port
FT = "gpt2-tiny-random-init-demo-sft"
BASE = "gpt2-tiny-random-init"
BOOK = "book-gpt2-medium-sft"


def demo(cwd, *extra, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in ("EVALKIT_STORE", "EVALKIT_SHARED_DATA")}
    return subprocess.run([sys.executable, "-m", "evalkit", "demo", "--offline", *extra],
                          cwd=cwd, capture_output=True, text=True, timeout=1800,
                          env={**clean, "COLUMNS": "200", **(env or {})})


def runs_in(cwd):
    with ResultsStore(cwd / "evalkit-results" / "evalkit.db") as store:
        return {r.id: r.kind for r in store.list_runs()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("demo")
    proc = demo(cwd, env={"OLLAMA_HOST": NO_SERVER})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return cwd, proc.stdout


def test_demo_offline_end_to_end(demo_run):
    cwd, text = demo_run
    out = cwd / "evalkit-demo"
    assert "RANDOMLY INITIALISED" in text
    for step in ("1/7 fine-tune", "2/7 generate", "3/7 import the book", "4/7 MMLU", "5/7 LLM judge", "6/7 rating bundle",
                 "7/7 leaderboard"):
        assert step in text, step
    assert f"no Ollama server answers at {NO_SERVER}" in text and "ollama pull llama3" in text
    assert text.count("skipped:") == 2  # the judge, once in its step and once in the summary
    # the fine-tuned model says something for most test records, and the demo says how many
    non_empty = int(re.search(rf"{FT}: (\d+) of 20 non-empty", text).group(1))
    assert non_empty >= 10, text
    assert "109 responses of book-gpt2-medium-sft" in text  # 110 records, one instruction repeated
    report = out / "leaderboard.html"
    assert report.is_file() and (out / "rating" / "rate.html").is_file() and (out / "rating" / "key.json").is_file()
    page = Page(report.read_text(encoding="utf-8"))
    notices = " ".join(e["text"] for e in page.find("p", **{"class": "notice"}))
    assert "random weights" in notices and FT in notices
    models = [e["attrs"]["data-model"] for e in page.find("tr") if "data-model" in e["attrs"]]
    assert sorted(models) == sorted([BASE, FT, BOOK])
    mmlu_cells = [e for e in page.find("td") if (e["attrs"].get("data-run") or "").startswith("mmlu-")]
    assert len(mmlu_cells) == 10  # overall and four categories, both models
    assert any("loss" in (e["attrs"].get("aria-label") or "") for e in page.find("svg"))
    # the store is the default one of this folder, with every run the demo made
    kinds = sorted(runs_in(cwd).values())
    assert kinds == ["finetune", "generate", "generate", "generate", "mmlu", "mmlu"]
    # the last lines: where things are and what to run next, in this folder
    tail = text.strip().splitlines()[-9:]
    assert tail[0] == "Where things are"
    assert tail[1].split() == ["results", "store:", "evalkit-results/evalkit.db"]
    assert [line.strip() for line in tail[5:]] == [
        "evalkit runs list", "evalkit leaderboard", f"evalkit compare {BASE} {FT}",
        "evalkit pairs import evalkit-demo/rating/key.json ratings-NAME.jsonl && evalkit arena"]


def test_next_commands_find_the_demo_store(demo_run):
    cwd, _ = demo_run
    env = {k: v for k, v in os.environ.items() if k != "EVALKIT_STORE"}
    listed = subprocess.run([sys.executable, "-m", "evalkit", "runs", "list", "--format", "json"], cwd=cwd,
                            capture_output=True, text=True, timeout=300, env=env)
    assert listed.returncode == 0, listed.stderr
    assert {r["model"] for r in __import__("json").loads(listed.stdout)} == {BASE, FT, BOOK}
    board = subprocess.run([sys.executable, "-m", "evalkit", "leaderboard", "--format", "csv"], cwd=cwd,
                           capture_output=True, text=True, timeout=300, env=env)
    assert board.returncode == 0 and BOOK in board.stdout and FT in board.stdout, board.stderr


@pytest.mark.browser
def test_demo_report_in_the_browser(demo_run, browser):
    """The report a person gets from the demo opens cleanly, its chart text is the page's size,
    MMLU choices carry their letters; the screenshot is kept for review."""
    from tests.report.test_browser import SCREENSHOTS, open_report

    cwd, _ = demo_run
    report = cwd / "evalkit-demo" / "leaderboard.html"
    page, events = open_report(browser, report)
    assert events["errors"] == [] and events["requests"] == [report.resolve().as_uri()]
    # every chart label is drawn at (about) the page's 14 px, whatever the chart
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('svg.chart text')).map(t => {
        const m = t.getScreenCTM(); return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b); })""")  # rotated labels too
    assert sizes and min(sizes) >= 12 and max(sizes) <= 16, sorted(set(round(s, 1) for s in sizes))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "demo-report.png"), full_page=True)
    # the book's real responses are readable text in the drill-down
    page.locator(f"#leaderboard tbody tr[data-model='{BOOK}'] .model-link").click()
    assert page.locator("#dd-items tbody tr").count() > 0
    page.locator("#dd-items tbody tr").first.click()
    page.screenshot(path=str(SCREENSHOTS / "demo-report-book-item.png"), full_page=False)
    # an MMLU question: its choices are lettered as gold and pred are
    page.locator(f"#leaderboard tbody tr[data-model='{FT}'] .model-link").click()
    mmlu = next(k for k in page.locator("#dd-run option").all_inner_texts() if "mmlu" in k.lower())
    page.select_option("#dd-run", label=mmlu)
    page.locator("#dd-items tbody tr").first.click()
    detail = page.inner_text("#dd-detail")
    assert re.search(r"^A\. .+\nB\. .+\nC\. .+\nD\. .+", detail, re.M), detail[:2000]
    page.locator("#dd-detail").screenshot(path=str(SCREENSHOTS / "demo-report-mmlu-item.png"))
    page.close()


@pytest.mark.browser
def test_rating_page_shows_completion_not_a_stale_export_message(demo_run, browser, tmp_path):
    cwd, _ = demo_run
    page_url = (cwd / "evalkit-demo" / "rating" / "rate.html").resolve().as_uri()
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(page_url + "?rater=ann")
    n = int(page.inner_text("#progress-text").split("/")[1].split()[0])
    for _ in range(2):
        page.keyboard.press("1")
    with page.expect_download():
        page.keyboard.press("e")
    assert page.inner_text("#message") == "Exported 2 rating(s) to ratings-ann.jsonl."
    page.keyboard.press("2")
    assert page.is_hidden("#message")  # the export no longer describes the ratings
    for _ in range(n - 3):
        page.keyboard.press("3")
    assert page.is_visible("#done-view") and page.is_hidden("#message")
    assert page.inner_text("#done-status") == f"Your last export held 2 of {n} ratings (some changed since): export again to send them all."
    with page.expect_download():
        page.keyboard.press("e")
    assert page.inner_text("#done-status") == f"✓ Complete: all {n} ratings exported to ratings-ann.jsonl. Send that file to the organiser."
    assert page.is_hidden("#message")
    from tests.report.test_browser import SCREENSHOTS

    page.screenshot(path=str(SCREENSHOTS / "demo-rating-done.png"), full_page=True)
    page.keyboard.press("Backspace")
    page.screenshot(path=str(SCREENSHOTS / "demo-rating-pair.png"), full_page=True)
    context.close()


def test_demo_again_adds_no_runs_and_says_so(demo_run):
    cwd, _ = demo_run
    before = runs_in(cwd)
    again = demo(cwd, env={"OLLAMA_HOST": NO_SERVER})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert runs_in(cwd) == before
    assert "Every step reused its finished run (6 runs): nothing new was added to the store." in again.stdout
    # fine-tune, generate, import, MMLU: each said in its step and again in the summary
    assert again.stdout.count("(reused: finished with the same inputs before)") == 8


def test_demo_again_with_a_server_reuses_steps_and_judges(demo_run):
    from tests.judge.fake_ollama import FakeOllama

    cwd, _ = demo_run
    with FakeOllama(models={"llama3": {}}) as server:
        server.script(lambda req: {"score": 40})
        again = demo(cwd, env={"OLLAMA_HOST": server.url})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "0-100 scores by llama3" in again.stdout and "skipped" not in again.stdout
    page = Page((cwd / "evalkit-demo" / "leaderboard.html").read_text(encoding="utf-8"))
    cells = {e["attrs"]["data-run"]: float(e["attrs"]["data-value"]) for e in page.find("td")
             if (e["attrs"].get("data-run") or "").startswith("judge-score-")}
    with ResultsStore(cwd / "evalkit-results" / "evalkit.db") as store:
        assert len(store.list_runs(kind="finetune")) == 1 and len(store.list_runs(kind="generate")) == 3  # reused
        assert len(store.list_runs(kind="mmlu")) == 2
        judged = store.list_runs(kind="judge-score")
        assert len(judged) == 3 and set(cells) == {r.id for r in judged}
        for run in judged:
            assert cells[run.id] == run.metrics["score_mean"].value
            statuses = {p["status"]: p["score"] for _, p in store.samples(run.id)}
            assert statuses.get("ok", 40) == 40  # the server's answer (an empty response scores 0 without asking)
