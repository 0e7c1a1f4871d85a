"""The rating page in a real browser: Debian's chromium driven by Playwright.

A bundle exported from two generate runs (the book's real model responses, one of them carrying
a hostile response) is opened from disk, rated with the keyboard, reloaded, exported, imported
and ranked; the page must make no request but its own file, log no error, and run nothing that a
response contains.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from evalkit.human.bundle import export_pairs, load_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("EVALKIT_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = (
    "<script>window.__evalkit_pwned = 'script'</script>"
    "<img src=\"x\" onerror=\"window.__evalkit_pwned = 'img'\"></script><!--"
)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"system chromium not found at {CHROMIUM} (apt-get install chromium, or set EVALKIT_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def plant_hostile_response(store, generate_runs) -> str:
    """Append hostile HTML (in prose and in a ``` block) to book-model-2's response on the item
    that will be shown first, so the page has to render it. Returns that response."""
    first_item = export_pairs(store, runs=list(generate_runs), n=5, seed=0).pairs[0].item_id
    payload = dict(store.samples(generate_runs[1]))[first_item]
    payload["response"] = f"{payload['response']}\nSee:\n```html\n{HOSTILE}\n```\nand {HOSTILE}"
    store.write_samples(generate_runs[1], [(first_item, payload)])
    return payload["response"]


def test_rate_in_the_browser_then_import_and_rank(browser, store, generate_runs, tmp_path, run_cli):
    hostile_response = plant_hostile_response(store, generate_runs)
    folder = tmp_path / "bundle"
    rc, out, err = run_cli("pairs", "export", "--runs", ",".join(generate_runs), "--n", "5", "--seed", "0",
                           "--out", folder, store=store.path)
    assert rc == 0, err
    key = load_key(folder / "key.json")
    pair_ids = [json.loads(line)["pair_id"] for line in (folder / "pairs.jsonl").read_text().splitlines()]
    first = key["pairs"][pair_ids[0]]
    assert hostile_response in (first["response_a"], first["response_b"])

    page_url = (folder / "rate.html").resolve().as_uri()
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    requests, problems = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    page.goto(page_url)
    shortcuts = page.inner_text("#shortcuts")
    for key_name in ("1", "2", "3", "4", "Backspace", "e"):
        assert key_name in shortcuts
    page.fill("#rater-input", "ann")
    page.press("#rater-input", "Enter")
    assert page.inner_text("#position") == "Pair 1 of 5"

    # the hostile response is on screen as text: nothing ran, no element was made from it
    hostile_side = "#response-a" if first["response_a"] == hostile_response else "#response-b"
    shown = page.inner_text(hostile_side)
    assert "<script>window.__evalkit_pwned = 'script'</script>" in shown
    assert page.locator(f"{hostile_side} pre.code code").inner_text().startswith("<script>")
    assert page.evaluate("typeof window.__evalkit_pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('#rate-view img, #rate-view script').length") == 0
    page.screenshot(path=str(tmp_path / "rate-hostile-pair.png"), full_page=True)

    for key_name in ("1", "2", "3"):
        page.keyboard.press(key_name)
    assert page.inner_text("#progress-text") == "3 / 5 rated"

    page.reload()  # progress survives: the page resumes from localStorage
    assert page.inner_text("#progress-text") == "3 / 5 rated"
    assert page.inner_text("#position") == "Pair 4 of 5"
    page.keyboard.press("Backspace")  # back one pair, see the stored verdict, change it
    assert page.inner_text("#position") == "Pair 3 of 5"
    assert "rated: tie" in page.inner_text("#already")
    page.keyboard.press("4")
    assert page.inner_text("#position") == "Pair 4 of 5"
    page.click("#comment")
    page.keyboard.type("1 is clearer")  # keys typed into the comment are text, not votes
    page.keyboard.press("Escape")
    assert page.inner_text("#progress-text") == "3 / 5 rated"
    page.keyboard.press("1")
    page.keyboard.press("2")
    assert page.is_visible("#done-view")
    assert page.inner_text("#progress-text") == "5 / 5 rated"
    assert page.evaluate("typeof window.__evalkit_pwned") == "undefined"

    with page.expect_download() as download_info:
        page.keyboard.press("e")
    download = download_info.value
    assert download.suggested_filename == "ratings-ann.jsonl"
    ratings_file = tmp_path / "ratings-ann.jsonl"
    download.save_as(str(ratings_file))
    page.screenshot(path=str(tmp_path / "rate-done.png"), full_page=True)
    context.close()

    assert problems == []
    # the only requests: the page itself (loaded, then reloaded with ?rater=ann)
    assert requests and {re.sub(r"\?.*$", "", url) for url in requests} == {page_url}, requests

    lines = [json.loads(line) for line in ratings_file.read_text(encoding="utf-8").splitlines()]
    assert [line["pair_id"] for line in lines] == pair_ids
    assert all(set(line) == {"rater", "pair_id", "outcome", "comment", "timestamp", "seconds"} for line in lines)
    assert [line["outcome"] for line in lines] == ["a", "b", "both_bad", "a", "b"]

    rc, out, err = run_cli("pairs", "import", folder / "key.json", ratings_file, store=store.path)
    assert rc == 0, err
    run_id = out.strip().splitlines()[0]
    stored = dict(store.samples(run_id))
    assert [stored[f"{pid}/ann"]["outcome"] for pid in pair_ids] == ["a", "b", "both_bad", "a", "b"]
    assert stored[f"{pair_ids[3]}/ann"]["comment"] == "1 is clearer"
    assert all(stored[f"{pid}/ann"]["model_a"] == key["pairs"][pid]["a"] for pid in pair_ids)

    # ranked: who won which pair follows from the key
    wins = {"book-model-1": 0, "book-model-2": 0}
    for pid, outcome in zip(pair_ids, ["a", "b", "both_bad", "a", "b"]):
        if outcome in ("a", "b"):
            wins[key["pairs"][pid][outcome]] += 1
    rc, out, err = run_cli("arena", "--bootstrap", "200", store=store.path)
    assert rc == 0, err
    assert "Bradley-Terry ratings (5 battles)" in out and "win rate of row over column" in out
    (tmp_path / "arena.txt").write_text(out)  # the rating table, beside the screenshots
    rc, out, err = run_cli("arena", "--bootstrap", "0", "--format", "json", store=store.path)
    rows = {r["model"]: r for r in json.loads(out)}
    assert {m: rows[m]["wins"] for m in wins} == wins
    assert all(r["ties"] == 1 and r["battles"] == 5 for r in rows.values())
    leader = max(wins, key=wins.get)
    assert rows[leader]["rating"] > 1000 > rows[min(wins, key=wins.get)]["rating"]

    # agreement with a judge run over the same pairs (verdicts set by hand: book-model-2 always)
    with store.start_run("judge-pairwise", "book-model-2", {"judge_model": "by-hand"}) as run:
        for pid in pair_ids:
            entry = key["pairs"][pid]
            sides = {entry["a"]: entry["response_a"], entry["b"]: entry["response_b"]}
            run.add_sample(entry["item_id"], {
                "instruction": entry["instruction"], "input": entry["input"],
                "generator_1": "book-model-1", "output_1": sides["book-model-1"],
                "generator_2": "book-model-2", "output_2": sides["book-model-2"], "preference": 2.0,
            })
    human_winners = [None if o == "both_bad" else key["pairs"][pid][o]
                     for pid, o in zip(pair_ids, ["a", "b", "both_bad", "a", "b"])]
    rc, out, err = run_cli("pairs", "agreement", "--format", "json", store=store.path)
    assert rc == 0, err
    (judge,) = json.loads(out)["judge_human"]
    assert judge["judge"] == "by-hand" and judge["n"] == 5
    assert judge["agreement"] == pytest.approx(human_winners.count("book-model-2") / 5)
    assert judge["agreement_without_ties"] == pytest.approx(human_winners.count("book-model-2") / 4)
