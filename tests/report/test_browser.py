"""The report in headless Chromium (system chromium through Playwright): offline, no errors,
sorting, drill-down, side by side, and injected markup in a response stays text."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.report import render_report
from tests.report import builders as b

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def open_report(browser, path: Path, *, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    events = {"requests": [], "console": [], "errors": []}
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on("console", lambda m: events["console"].append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-items-ready='1']", timeout=15000)
    return page, events


def order(page) -> list[str]:
    return page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.dataset.model)")


@pytest.fixture
def report(small_store, eval_example, tmp_path):
    # a third model with a judge score between the two, and no human rating
    b.add_judge_score(small_store, "model-3", eval_example[:12], "output", [50] * 12, mean=55.0, stderr=2.0)
    return render_report(small_store, tmp_path / "leaderboard.html", title="evalkit test report")


def test_offline_no_console_errors_and_screenshot(browser, report):
    page, events = open_report(browser, report)
    assert events["requests"] == [report.resolve().as_uri()]  # the file itself, nothing else
    assert events["errors"] == [] and [c for c in events["console"] if c.startswith(("error", "warning"))] == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-test.png"), full_page=True)
    assert (SCREENSHOTS / "report-test.png").stat().st_size > 10_000
    page.close()


def test_clicking_headers_sorts_rows(browser, report):
    page, events = open_report(browser, report)
    assert order(page) == ["model-1", "model-3", "model-2"]  # judge score, best first
    heads = page.locator("#leaderboard thead th")
    labels = [t.strip() for t in heads.all_inner_texts()]
    judge = next(i for i, t in enumerate(labels) if "Judge score" in t)
    heads.nth(judge).click()  # first click on a number column: highest first
    assert order(page) == ["model-1", "model-3", "model-2"]
    assert heads.nth(judge).get_attribute("aria-sort") == "descending"
    heads.nth(judge).click()
    assert order(page) == ["model-2", "model-3", "model-1"]
    human = next(i for i, t in enumerate(labels) if "Human rating" in t)
    heads.nth(human).click()  # model-3 has no rating: missing stays last either way
    assert order(page) == ["model-1", "model-2", "model-3"]
    heads.nth(human).click()
    assert order(page) == ["model-2", "model-1", "model-3"]
    heads.nth(0).click()  # the model name: alphabetical
    assert order(page) == ["model-1", "model-2", "model-3"]
    assert events["errors"] == []
    page.close()


def test_drilldown_filter_and_side_by_side(browser, report, small_store, eval_example):
    page, events = open_report(browser, report)
    page.locator("#leaderboard tbody tr[data-model='model-2'] .model-link").click()
    assert page.locator("#dd-model").input_value() == "model-2"
    run_id = page.locator("#dd-run").input_value()
    assert small_store.get_run(run_id).model == "model-2"
    page.locator("#dd-run").select_option(small_store.ids["js2"])
    assert page.locator("#dd-items tbody tr").count() == 12
    target = eval_example[3]
    page.locator("#dd-filter").fill(target["instruction"][:30])
    assert page.locator("#dd-items tbody tr").count() == 1
    page.locator("#dd-items tbody tr").first.click()
    detail = page.locator("#dd-detail").inner_text()
    assert target["instruction"] in detail and target["model 2 response"].strip() in detail and target["output"] in detail
    assert "Score: 20" in detail  # the judge's raw answer for this item
    page.locator("#dd-other").select_option("model-1")
    cards = page.locator("#dd-detail .card")
    assert cards.count() == 2
    assert target["model 1 response"].strip() in cards.nth(1).inner_text() and "Score: 90" in cards.nth(1).inner_text()
    assert events["errors"] == []
    page.close()


def test_injected_markup_in_a_response_stays_text(browser, report, small_store):
    page, events = open_report(browser, report)
    page.locator("#dd-model").select_option("model-1")
    page.locator("#dd-run").select_option(small_store.ids["gen1"])
    page.locator("#dd-items tbody tr").first.click()
    detail = page.locator("#dd-detail").inner_text()
    assert b.XSS in detail  # shown verbatim, as text
    page.wait_for_timeout(300)  # give an onerror handler the chance it must not get
    assert page.evaluate("window.__pwned") is None
    # no element the response could have added: no image, and no script but the page's own code
    assert page.locator("img").count() == 0 and page.locator("script:not([type])").count() == 1
    assert events["errors"] == [] and [c for c in events["console"] if c.startswith("error")] == []
    page.close()


def test_compressed_items_load(browser, small_store, tmp_path):
    path = render_report(small_store, tmp_path / "packed.html", compress_over=0)
    page, events = open_report(browser, path)
    page.locator("#dd-model").select_option("model-1")
    page.locator("#dd-run").select_option(small_store.ids["js1"])
    # a compressed run decodes when opened: the page says when it can be used
    page.wait_for_selector("body[data-items-ready='1']", timeout=15000)
    assert page.locator("#dd-items tbody tr").count() == 12
    assert events["errors"] == [] and events["requests"] == [path.resolve().as_uri()]
    page.close()


def test_comparison_view_and_differing_items(browser, report, small_store):
    page, events = open_report(browser, report)
    page.locator("#cmp-a").select_option("model-1")
    page.locator("#cmp-b").select_option("model-2")
    table = page.locator("#cmp-out table").first
    text = table.inner_text()
    assert "A: model-1" in text and "B: model-2" in text and "judge-score" in text
    assert "A better" in text  # model-1's scores are far higher on the same items
    page.locator("#cmp-b").select_option("model-3")
    assert "judge-score" in page.locator("#cmp-out").inner_text()
    page.locator("#cmp-b").select_option("model-2")
    differing = page.locator("#cmp-out table").nth(1).locator("tbody tr")
    assert differing.count() > 0
    differing.first.click()
    cards = page.locator("#dd-detail .card")
    assert cards.count() == 2 and page.locator("#dd-other").input_value() == "model-2"
    assert events["errors"] == []
    page.close()


def test_model_link_opens_a_compressed_run_decoded_on_demand(browser, small_store, tmp_path):
    path = render_report(small_store, tmp_path / "packed.html", compress_over=0)
    page, events = open_report(browser, path)
    page.locator("#leaderboard tbody tr[data-model='model-2'] .model-link").click()
    assert page.locator("#dd-model").input_value() == "model-2"  # the click took effect at once
    page.wait_for_selector("body[data-items-ready='1']", timeout=15000)
    run_id = page.locator("#dd-run").input_value()
    assert small_store.get_run(run_id).model == "model-2"
    assert page.locator("#dd-items tbody tr").count() == small_store.sample_count(run_id)
    page.locator("#dd-filter").fill("zzzz-no-such-text")
    assert page.locator("#dd-items tbody tr").count() == 0
    page.locator("#dd-other").select_option("model-1")
    page.locator("#dd-filter").fill("")
    page.wait_for_selector("body[data-items-ready='1']", timeout=15000)
    assert page.locator("#dd-detail .card").count() == 2
    assert events["errors"] == [] and events["requests"] == [path.resolve().as_uri()]
    page.close()
