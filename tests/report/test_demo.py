"""`evalkit demo --offline` end to end with the assets in ../shared: every step runs (the judge
is skipped without a server, and runs when one answers), and the report says the models are
randomly initialised. The demo runs once per module; the tests below read what it made."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, shared_path
from tests.report.test_render import Page

pytestmark = pytest.mark.slow
NO_SERVER = "http://127.0.0.1:9"  # nothing listens on the discard port


def demo(out, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "evalkit", "demo", "--offline", "--out", str(out), *extra],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    shared_path("book-ch07", "instruction-data.json")
    shared_path("mmlu", "test.jsonl")
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = demo(out, env={"OLLAMA_HOST": NO_SERVER})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_demo_offline_end_to_end(demo_run):
    out, text = demo_run
    assert "RANDOMLY INITIALISED" in text
    for step in ("1/6 fine-tune", "2/6 generate", "3/6 MMLU", "4/6 LLM judge", "5/6 rating bundle", "6/6 leaderboard"):
        assert step in text, step
    assert f"no Ollama server answers at {NO_SERVER}" in text and "ollama pull llama3" in text
    assert text.count("skipped:") == 2  # the judge, once in its step and once in the summary
    report = out / "leaderboard.html"
    assert report.is_file() and (out / "rating" / "rate.html").is_file() and (out / "rating" / "key.json").is_file()
    page = Page(report.read_text(encoding="utf-8"))
    notices = " ".join(e["text"] for e in page.find("p", **{"class": "notice"}))
    assert "random weights" in notices and "gpt2-tiny-random-init-demo-sft" in notices
    models = [e["attrs"]["data-model"] for e in page.find("tr") if "data-model" in e["attrs"]]
    assert sorted(models) == ["gpt2-tiny-random-init", "gpt2-tiny-random-init-demo-sft"]
    mmlu_cells = [e for e in page.find("td") if (e["attrs"].get("data-run") or "").startswith("mmlu-")]
    assert len(mmlu_cells) == 10  # overall and four categories, both models
    assert any("loss" in (e["attrs"].get("aria-label") or "") for e in page.find("svg"))


@pytest.mark.browser
def test_demo_report_in_the_browser(demo_run, browser):
    """The report a person gets from the demo opens cleanly; its screenshot is kept for review."""
    from tests.report.test_browser import SCREENSHOTS, open_report

    out, _ = demo_run
    page, events = open_report(browser, out / "leaderboard.html")
    assert events["errors"] == [] and events["requests"] == [(out / "leaderboard.html").resolve().as_uri()]
    page.locator("#leaderboard tbody tr").first.locator(".model-link").click()
    assert page.locator("#dd-items tbody tr").count() > 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "demo-report.png"), full_page=True)
    page.close()


def test_demo_again_with_a_server_reuses_steps_and_judges(demo_run):
    from tests.judge.fake_ollama import FakeOllama

    out, _ = demo_run
    with FakeOllama(models={"llama3": {}}) as server:
        server.script(lambda req: {"score": 40})
        again = demo(out, env={"OLLAMA_HOST": server.url})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "0-100 scores by llama3" in again.stdout and "skipped" not in again.stdout
    page = Page((out / "leaderboard.html").read_text(encoding="utf-8"))
    cells = {e["attrs"]["data-run"]: float(e["attrs"]["data-value"]) for e in page.find("td")
             if (e["attrs"].get("data-run") or "").startswith("judge-score-")}
    from evalkit.store import ResultsStore

    with ResultsStore(out / "evalkit.db") as store:
        assert len(store.list_runs(kind="finetune")) == 1 and len(store.list_runs(kind="generate")) == 2  # reused
        judged = store.list_runs(kind="judge-score")
        assert len(judged) == 2 and set(cells) == {r.id for r in judged}
        for run in judged:
            assert cells[run.id] == run.metrics["score_mean"].value
            statuses = {p["status"]: p["score"] for _, p in store.samples(run.id)}
            assert statuses.get("ok", 40) == 40  # the server's answer (an empty response scores 0 without asking)
