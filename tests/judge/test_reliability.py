"""Retries, fail-fast errors, preflight, the answer cache, several hosts."""

from __future__ import annotations

import pytest

from evalkit.errors import EvalkitError
from evalkit.judge import run_judge
from evalkit.judge.providers.ollama import OllamaJudgeClient, resolve_hosts
from tests.judge.conftest import add_generate_run
from tests.judge.fake_ollama import Fault, FakeOllama

FAST = {"retry_backoff": 0.01, "progress": False}


def judge(store, gen, server, **kwargs):
    hosts = kwargs.pop("hosts", None) or [server.url]
    return run_judge(store, responses_run=gen, hosts=hosts, **{**FAST, **kwargs})


def test_transient_failures_are_retried(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: {"score": 50})
    fake_ollama.inject(Fault(status=500), Fault(status=503), Fault(status=429), Fault(garbage=True), Fault(drop=True), Fault(delay=3))
    gen = add_generate_run(store, book_responses[:3])
    run_id = judge(store, gen, fake_ollama, concurrency=1, timeout=0.5, retries=6)
    samples = [p for _, p in store.samples(run_id)]
    assert [p["score"] for p in samples] == [50, 50, 50]
    assert fake_ollama.judge_calls == 3 + 6  # every fault cost one retry


def test_client_error_fails_fast_with_the_servers_message(store, fake_ollama, book_responses):
    # two: the item a worker may start before the stop fails too, so no item is stored
    fake_ollama.inject(Fault(status=400, error="invalid format schema"), Fault(status=400, error="invalid format schema"))
    gen = add_generate_run(store, book_responses[:3])
    with pytest.raises(EvalkitError, match=r"refused the request \(400\): invalid format schema"):
        judge(store, gen, fake_ollama, concurrency=1)
    # no retry: every request the server saw is a different item (one more was already in flight)
    assert len({str(r.messages) for r in fake_ollama.requests}) == fake_ollama.judge_calls <= 2
    # it failed before its first item: no empty run is left behind
    assert store.list_runs(kind="judge-score") == []


def test_retries_exhausted_stops_the_run_and_keeps_finished_items(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: {"score": 40})
    # the first item's answer is already cached (another model gave the same response)
    run_judge(store, responses_run=add_generate_run(store, book_responses[:1], model="other"), hosts=[fake_ollama.url], **FAST)
    gen = add_generate_run(store, book_responses[:4])
    # enough failures for the failing item and the one a worker may start before the stop
    fake_ollama.inject(*[Fault(status=500, error="out of memory")] * 6)
    with pytest.raises(EvalkitError, match="failed after 3 attempts; last error: .*out of memory.*1 of 4 items are stored; re-run to resume"):
        judge(store, gen, fake_ollama, concurrency=1, retries=2)
    (run,) = store.list_runs(kind="judge-score", model="gpt2-medium-sft")
    assert run.status == "failed" and store.sample_count(run.id) == 1
    # the server recovers: the same command resumes the same run
    run_id = judge(store, gen, fake_ollama, concurrency=1)
    assert run_id == run.id and store.sample_count(run_id) == 4 and store.get_run(run_id).status == "done"


def test_cache_makes_a_rerun_free_and_refresh_asks_again(store, fake_ollama, book_responses):
    fake_ollama.script(lambda req: {"score": 70})
    gen = add_generate_run(store, book_responses[:10])
    first = judge(store, gen, fake_ollama)
    assert fake_ollama.judge_calls == 10
    fake_ollama.reset_counts()
    assert judge(store, gen, fake_ollama) == first  # a finished run is reused
    assert fake_ollama.judge_calls == 0
    store.delete_run(first)
    second = judge(store, gen, fake_ollama)  # a new run, every answer from the cache
    assert second != first and fake_ollama.judge_calls == 0
    assert store.get_run(second).metrics["score_mean"].value == 70
    third = judge(store, gen, fake_ollama, refresh=True)
    assert third not in (first, second) and fake_ollama.judge_calls == 10
    # a different judge option is a different cache key
    fake_ollama.reset_counts()
    judge(store, gen, fake_ollama, seed=7)
    assert fake_ollama.judge_calls == 10


def test_cache_key_includes_the_model_digest(store, book_responses):
    gen = add_generate_run(store, book_responses[:2])
    with FakeOllama(models={"llama3": {"digest": "a" * 64}}) as server:
        judge(store, gen, server)
        assert server.judge_calls == 2
    with FakeOllama(models={"llama3": {"digest": "b" * 64}}) as server:  # the model was re-pulled
        run_id = judge(store, gen, server)
        assert server.judge_calls == 2
        assert store.get_run(run_id).config["judge_digest"] == "b" * 64


def test_two_hosts_share_the_work(store, book_responses):
    with FakeOllama(latency=0.05) as a, FakeOllama(latency=0.05) as b:
        a.script(lambda req: {"score": 30})
        b.script(lambda req: {"score": 30})
        gen = add_generate_run(store, book_responses[:20])
        run_id = judge(store, gen, a, hosts=[a.url, b.url], concurrency=4)
        assert a.judge_calls + b.judge_calls == 20
        assert a.judge_calls >= 5 and b.judge_calls >= 5
        assert a.count("/api/show") == b.count("/api/show") == 1  # both preflighted
        assert store.sample_count(run_id) == 20


def test_a_failing_host_is_retried_on_the_other(store, book_responses):
    with FakeOllama() as a, FakeOllama() as b:
        a.inject(*[Fault(status=500)] * 50)
        b.script(lambda req: {"score": 10})
        gen = add_generate_run(store, book_responses[:5])
        run_id = judge(store, gen, a, hosts=[a.url, b.url], concurrency=1, retries=1)
        assert store.get_run(run_id).metrics["score_mean"].value == 10


def test_preflight_errors(store, book_responses, fake_ollama):
    gen = add_generate_run(store, book_responses[:2])
    with pytest.raises(EvalkitError, match=r"cannot reach Ollama at http://127.0.0.1:9 .*`ollama serve`"):
        judge(store, gen, None, hosts=["127.0.0.1:9"])
    with pytest.raises(EvalkitError, match=r"judge model 'qwen2:7b' is not available on .*run `ollama pull qwen2:7b`"):
        judge(store, gen, fake_ollama, judge_model="qwen2:7b")
    with FakeOllama(models={"llama3": {"digest": "c" * 64}}) as other:
        with pytest.raises(EvalkitError, match="different builds of llama3"):
            judge(store, gen, fake_ollama, hosts=[fake_ollama.url, other.url])
    assert fake_ollama.judge_calls == 0 and store.list_runs(kind="judge-score") == []


def test_host_resolution(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert resolve_hosts(None) == ["http://localhost:11434"]
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")
    assert resolve_hosts(None) == ["http://gpu-box:11434"]
    assert resolve_hosts(["http://a:1/", "b:2", "http://a:1"]) == ["http://a:1", "http://b:2"]


def test_client_records_model_info(fake_ollama):
    client = OllamaJudgeClient("llama3", [fake_ollama.url])
    info = client.preflight()
    assert info.digest == fake_ollama.models["llama3:latest"]["digest"] and info.context_length == 8192
    client.close()
