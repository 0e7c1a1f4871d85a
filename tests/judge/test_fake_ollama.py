"""The loopback server answers the official ollama client as Ollama's API documents."""

from __future__ import annotations

import time

import httpx
import ollama
import pytest

from tests.judge.fake_ollama import Fault, FakeOllama, Reply, Token, schema_instance, wait_until

SCORE = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 100}}, "required": ["score"]}


def test_tags_show_version_and_unknown_model(fake_ollama):
    client = ollama.Client(fake_ollama.url)
    (model,) = client.list().models
    assert model.model == "llama3:latest" and model.digest and len(model.digest) == 64
    shown = client.show("llama3")
    assert shown.modelinfo["llama.context_length"] == 8192
    assert httpx.get(f"{fake_ollama.url}/api/version").json() == {"version": "0.12.11"}
    with pytest.raises(ollama.ResponseError) as err:
        client.show("mistral")
    assert err.value.status_code == 404 and err.value.error == "model 'mistral' not found"
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="mistral", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404


def test_chat_and_generate_stream_and_not(fake_ollama):
    client = ollama.Client(fake_ollama.url)
    fake_ollama.script(lambda req: Reply(content="The answer is 42."))
    messages = [{"role": "user", "content": "hi"}]
    whole = client.chat(model="llama3", messages=messages, stream=False)
    assert whole.message.content == "The answer is 42." and whole.done and whole.eval_count == 5
    parts = list(client.chat(model="llama3", messages=messages, stream=True))
    assert "".join(p.message.content for p in parts) == "The answer is 42."
    assert [p.done for p in parts] == [False] * 5 + [True]
    assert client.generate(model="llama3", prompt="x", stream=False).response == "The answer is 42."
    assert "".join(p.response for p in client.generate(model="llama3", prompt="x", stream=True)) == "The answer is 42."
    assert fake_ollama.count("/api/chat") == 2 and fake_ollama.count("/api/generate") == 2
    assert fake_ollama.judge_calls == 4


def test_format_schema_default_answer_and_request_fields(fake_ollama):
    client = ollama.Client(fake_ollama.url)
    answer = client.chat(model="llama3", messages=[{"role": "user", "content": "rate"}], format=SCORE,
                         options={"seed": 123, "temperature": 0}, stream=False)
    assert answer.message.content == '{"score": 0}'
    assert schema_instance(SCORE) == {"score": 0}
    request = fake_ollama.requests[-1]
    assert request.format == SCORE and request.options == {"seed": 123, "temperature": 0} and not request.stream


def test_logprobs_top_level_list_per_token(fake_ollama):
    client = ollama.Client(fake_ollama.url)
    fake_ollama.script(lambda req: Reply(tokens=[Token("2", -0.25, {"1": -1.5, " 2": -4.0})]))
    messages = [{"role": "user", "content": "which?"}]
    answer = client.chat(model="llama3", messages=messages, logprobs=True, top_logprobs=2, stream=False)
    assert answer.message.content == "2"
    (entry,) = answer.logprobs
    assert entry.token == "2" and entry.logprob == -0.25
    assert [(t.token, t.logprob) for t in entry.top_logprobs] == [("2", -0.25), ("1", -1.5)]
    assert client.chat(model="llama3", messages=messages, stream=False).logprobs is None  # not asked
    with FakeOllama(supports_logprobs=False) as old:
        old.script(lambda req: Reply(tokens=[Token("2", -0.25, {"1": -1.5})]))
        assert ollama.Client(old.url).chat(model="llama3", messages=messages, logprobs=True, stream=False).logprobs is None


def test_faults_are_served_in_order_then_normal_answers(fake_ollama):
    client = ollama.Client(fake_ollama.url, timeout=0.5)
    messages = [{"role": "user", "content": "hi"}]
    fake_ollama.inject(Fault(status=500, error="boom"), Fault(status=429), Fault(garbage=True), Fault(drop=True), Fault(delay=2.0))
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3", messages=messages, stream=False)
    assert (err.value.status_code, err.value.error) == (500, "boom")
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3", messages=messages, stream=False)
    assert err.value.status_code == 429
    with pytest.raises(ValueError):  # json.JSONDecodeError from a garbage body
        client.chat(model="llama3", messages=messages, stream=False)
    with pytest.raises(httpx.RemoteProtocolError):
        client.chat(model="llama3", messages=messages, stream=False)
    with pytest.raises(httpx.ReadTimeout):
        client.chat(model="llama3", messages=messages, stream=False)
    assert client.chat(model="llama3", messages=messages, stream=False).message.content == "ok"
    assert fake_ollama.judge_calls == 6


def test_latency_and_stop_interrupts_injected_delays():
    import threading

    server = FakeOllama(latency=0.2).start()
    client = ollama.Client(server.url)
    started = time.monotonic()
    client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert time.monotonic() - started >= 0.2
    server.inject(Fault(delay=25.0))
    outcome = []

    def slow_request():
        try:
            outcome.append(client.chat(model="llama3", messages=[{"role": "user", "content": "x"}], stream=False))
        except Exception as exc:  # noqa: BLE001 - either way the request must end
            outcome.append(exc)

    worker = threading.Thread(target=slow_request, daemon=True)
    worker.start()
    assert wait_until(lambda: server.judge_calls == 2)
    started = time.monotonic()
    server.stop()
    worker.join(timeout=10)
    assert not worker.is_alive() and outcome
    assert time.monotonic() - started < 5  # the 25 s delay was cut short


def test_request_limit_is_bounded():
    with FakeOllama(max_requests=2) as server:
        client = ollama.Client(server.url)
        for _ in range(2):
            client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}], stream=False)
        with pytest.raises(ollama.ResponseError) as err:
            client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}], stream=False)
        assert err.value.status_code == 503
