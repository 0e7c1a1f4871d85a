"""The same code against a real Ollama: runs only when OLLAMA_HOST answers.

Judge model: ``$EVALKIT_OLLAMA_JUDGE``, else the first model the server lists.
Run with ``OLLAMA_HOST=http://localhost:11434 python -m pytest tests/judge -m ollama``.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.judge.conftest import add_generate_run

pytestmark = pytest.mark.ollama


@pytest.fixture(scope="module")
def real_ollama() -> tuple[str, str]:
    host = os.environ.get("OLLAMA_HOST")
    if not host:
        pytest.skip("OLLAMA_HOST is not set: no real Ollama to test against")
    import ollama

    try:
        models = ollama.Client(host, timeout=5).list().models
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        pytest.skip(f"Ollama at {host} does not answer ({type(exc).__name__})")
    judge = os.environ.get("EVALKIT_OLLAMA_JUDGE") or (models[0].model if models else None)
    if not judge:
        pytest.skip(f"Ollama at {host} has no models; `ollama pull llama3` first")
    return host, judge


def test_score_and_pairwise_with_a_real_judge(store, real_ollama, book_responses):
    from evalkit.judge import run_judge

    host, judge = real_ollama
    gen = add_generate_run(store, book_responses[:3])
    run_id = run_judge(store, responses_run=gen, judge_model=judge, hosts=[host], progress=False, timeout=600)
    samples = [p for _, p in store.samples(run_id)]
    assert len(samples) == 3
    for payload in samples:
        assert payload["status"] in ("ok", "empty", "unparsed")
        assert payload["score"] is None or 0 <= payload["score"] <= 100
    assert store.get_run(run_id).config["judge_digest"]

    pair_id = run_judge(store, responses_run=gen, judge_model=judge, hosts=[host], mode="pairwise", progress=False, timeout=600)
    for _, payload in store.samples(pair_id):
        assert payload["preference"] is None or 1 <= payload["preference"] <= 2
    # everything is cached now: a fresh run of the same judging is immediate
    store.delete_run(pair_id)
    started = time.monotonic()
    again = run_judge(store, responses_run=gen, judge_model=judge, hosts=[host], mode="pairwise", progress=False)
    assert time.monotonic() - started < 5 and again != pair_id
