"""`evalkit demo --offline` end to end with the assets in ../shared: every step runs (the judge
is skipped without a server, and runs when one answers), and the report says the models are
randomly initialised."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, shared_path
from tests.report.test_render import Page

pytestmark = pytest.mark.slow


def demo(out, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "evalkit", "demo", "--offline", "--out", str(out), *extra],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_demo_offline_end_to_end(tmp_path):
    shared_path("book-ch07", "instruction-data.json")
    shared_path("mmlu", "test.jsonl")
    out = tmp_path / "demo"
    # nothing listens on this port: the judge step must say so and skip
    proc = demo(out, env={"OLLAMA_HOST": "http://127.0.0.1:9", "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "RANDOMLY INITIALISED" in text
    for step in ("1/6 fine-tune", "2/6 generate", "3/6 MMLU", "4/6 LLM judge", "5/6 rating bundle", "6/6 leaderboard"):
        assert step in text, step
    assert "no Ollama server answers at http://127.0.0.1:9" in text and "ollama pull llama3" in text
    assert "skipped: MMLU" not in text.replace("skipped: no Ollama", "")
    report = out / "leaderboard.html"
    assert report.is_file() and (out / "rating" / "rate.html").is_file() and (out / "rating" / "key.json").is_file()
    page = Page(report.read_text(encoding="utf-8"))
    notices = " ".join(e["text"] for e in page.find("p", **{"class": "notice"}))
    assert "random weights" in notices and "gpt2-tiny-random-init-demo-sft" in notices
    models = [e["attrs"]["data-model"] for e in page.find("tr") if "data-model" in e["attrs"]]
    assert sorted(models) == ["gpt2-tiny-random-init", "gpt2-tiny-random-init-demo-sft"]
    mmlu_cells = [e for e in page.find("td") if (e["attrs"].get("data-run") or "").startswith("mmlu-")]
    assert len(mmlu_cells) >= 2  # MMLU numbers for both models
    assert any("loss" in (e["attrs"].get("aria-label") or "") for e in page.find("svg"))

    # with a server answering, a second run reuses the finished steps and adds the judge's scores
    from tests.judge.fake_ollama import FakeOllama

    with FakeOllama(models={"llama3": {}}) as server:
        server.script(lambda req: {"score": 40})
        again = demo(out, env={"OLLAMA_HOST": server.url, "COLUMNS": "200"})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "0-100 scores by llama3" in again.stdout
    page = Page(report.read_text(encoding="utf-8"))
    judge_cells = [e for e in page.find("td") if (e["attrs"].get("data-run") or "").startswith("judge-score-")]
    assert len(judge_cells) == 2 and all(float(e["attrs"]["data-value"]) == 40.0 for e in judge_cells)
