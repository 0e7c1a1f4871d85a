"""Fixtures for the report tests: a store filled with runs of real texts, and a headless
Chromium (system ``chromium`` through Playwright) that skips with the reason when absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import shared_path
from tests.report import builders as b

CHROMIUM = os.environ.get("EVALKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def eval_example() -> list[dict]:
    return b.load_json(shared_path("book-ch07", "eval-example-data.json"))


@pytest.fixture
def small_store(store, eval_example):
    """Two models of eval-example-data: responses, judge scores (one injected payload), MMLU for
    one, an arena run and a fine-tune run."""
    recs = eval_example[:12]
    ids = {}
    ids["gen1"] = b.add_generate(store, "model-1", recs, "model 1 response", inject=b.XSS)
    ids["gen2"] = b.add_generate(store, "model-2", recs, "model 2 response")
    ids["js1"] = b.add_judge_score(store, "model-1", recs, "model 1 response", [70, 80, 60, 90, 50, 85, 75, 65, 55, 95, 60, None],
                                   mean=71.36, stderr=4.1)
    ids["js2"] = b.add_judge_score(store, "model-2", recs, "model 2 response", [40, 50, 30, 20, 60, 45, 35, 25, 55, 65, 30, 40],
                                   mean=41.25, stderr=3.9)
    ids["mmlu1"] = b.add_mmlu(store, "model-1", {"acc": (0.3125, 0.05, 80), "acc/stem": (0.25, 0.1, 20), "acc/humanities": (0.35, 0.1, 20),
                                                 "acc/social_sciences": (0.3, 0.1, 20), "acc/other": (0.35, 0.1, 20),
                                                 "acc/abstract_algebra": (0.25, 0.1, 20)})
    ids["arena"] = b.add_arena(store, {"model-1": (1052.5, 1010.0, 1095.0, 40), "model-2": (947.5, 905.0, 990.0, 40)})
    ids["ft"] = b.add_finetune(store, "model-1", [(5, 3.2, 3.4), (10, 2.6, 2.9), (15, 2.1, 2.5)])
    store.ids = ids
    return store


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need the system chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need playwright (pip install playwright); the system chromium is used, no download")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
